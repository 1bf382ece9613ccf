"""Scoring: precision, recall and F per label (spaCy's scorer), support, confusion and mismatches."""
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Set, Tuple, Union

from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from .readers import same_tokens
from .semeval import semeval_examples

# The labels scored: None for those in the gold data, "all", or the labels themselves.
Labels = Union[None, str, Iterable[str]]


@dataclass
class Evaluation:
    """Scores of one pipeline on gold examples, and the examples it got wrong."""

    scores: Dict[str, Any]
    per_label: Dict[str, Dict[str, float]]
    mismatches: List[Dict[str, Any]]
    n_examples: int
    # gold label -> {"found", "missed", "boundary", "wrong_label": {predicted label: n}}
    confusion: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    spurious: Dict[str, int] = field(default_factory=dict)  # predicted label -> n
    # Each example's predicted entities, in order: what the round trip compares against.
    predicted: List[List[Tuple[int, int, str]]] = field(default_factory=list, repr=False)
    # Predicted entities of labels that were not scored (none in the gold data), per label.
    unscored: Dict[str, int] = field(default_factory=dict)
    # Partial-match scores (SemEval-2013: strict, exact, partial, type), as semeval_scores returns.
    semeval: Dict[str, Any] = field(default_factory=dict)

    def score_rows(self) -> List[Tuple[str, str, str, str, Any]]:
        """(label, P, R, F, support) per label, then ALL: the table every report shows."""
        rows = [(label, f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}", s["support"])
                for label, s in sorted(self.per_label.items())]
        scores = self.scores
        rows.append(("ALL", f"{scores['ents_p']:.3f}", f"{scores['ents_r']:.3f}", f"{scores['ents_f']:.3f}",
                     sum(s["support"] for s in self.per_label.values())))
        return rows

    def partial_matches(self) -> Dict[str, Any]:
        """The SemEval-2013 scores keyed by scheme (strict, exact, partial, type), each overall
        with its per-label figures under "per_label": the --json layout."""
        if not self.semeval:
            return {}
        return {scheme: {**overall, "per_label": {label: schemes[scheme]
                                                  for label, schemes in self.semeval["per_label"].items()}}
                for scheme, overall in self.semeval["overall"].items()}

    def unscored_line(self) -> str:
        """The predictions that were not scored, on a line of their own ("" when none)."""
        if not self.unscored:
            return ""
        counts = ", ".join(f"{label} {n}" for label, n in self.unscored.items())
        return f"not scored (labels without gold entities in this data): {counts}"

    def confusion_rows(self) -> List[Tuple[str, int, int, int, str, int]]:
        """(gold label, found, missed, other boundaries, predicted as other labels, spurious)."""
        rows = []
        for label in sorted(set(self.confusion) | set(self.spurious)):
            row = self.confusion.get(label, {"found": 0, "missed": 0, "boundary": 0, "wrong_label": {}})
            wrong = ", ".join(f"{other} {n}" for other, n in sorted(row["wrong_label"].items())) or "0"
            rows.append((label, row["found"], row["missed"], row["boundary"], wrong, self.spurious.get(label, 0)))
        return rows


def _fresh(nlp: Language, examples: List[Example]) -> List[Doc]:
    # New docs over the reference tokens, so no earlier prediction leaks into this one.
    return [same_tokens(nlp.vocab, eg.predicted) for eg in examples]


def predict(nlp: Language, examples: List[Example], batch_size: int = 256) -> List[Example]:
    """`nlp`'s predictions as new Examples against the same gold."""
    docs = nlp.pipe(_fresh(nlp, examples), batch_size=batch_size)
    return [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]


def _ents(doc: Doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def evaluate(nlp: Language, examples: Iterable[Example], labels: Labels = None) -> Evaluation:
    """Precision, recall and F per label and overall (spaCy's scorer), with support, and the
    examples whose predicted entities differ from the gold ones.

    Args:
        nlp (Language): the pipeline to score.
        examples (Iterable[Example]): gold examples.
        labels (Union[None, str, Iterable[str]]): the labels scored. None (default): those that
            occur in the gold data; predictions of other labels (a fine-tuned pipeline's old
            labels, say) are counted in `Evaluation.unscored`, not against precision. "all":
            every label, as `spacy evaluate` scores.
    RETURNS (Evaluation): the scores.
    """
    examples = list(examples)
    predicted = predict(nlp, examples)
    all_predicted = [_ents(eg.predicted) for eg in predicted]
    if labels is None:
        scored: Optional[Set[str]] = {e.label_ for eg in examples for e in eg.reference.ents}
    else:
        scored = None if labels == "all" else set(labels)
    unscored: Dict[str, int] = {}
    if scored is not None:
        for eg in predicted:
            for ent in eg.predicted.ents:
                if ent.label_ not in scored:
                    unscored[ent.label_] = unscored.get(ent.label_, 0) + 1
            eg.predicted.ents = [e for e in eg.predicted.ents if e.label_ in scored]
    prf = get_ner_prf(predicted)
    support: Dict[str, int] = {}
    confusion: Dict[str, Dict[str, Any]] = {}
    spurious: Dict[str, int] = {}
    mismatches = []
    for eg in predicted:
        gold, pred = _ents(eg.reference), _ents(eg.predicted)
        gold_status, pred_status = compare_entities(gold, pred)
        for (_, _, label), (status, other) in zip(gold, gold_status):
            support[label] = support.get(label, 0) + 1
            row = confusion.setdefault(label, {"found": 0, "missed": 0, "boundary": 0, "wrong_label": {}})
            if status == "wrong_label":
                row["wrong_label"][other] = row["wrong_label"].get(other, 0) + 1
            else:
                row[status] += 1
        for (_, _, label), (status, _) in zip(pred, pred_status):
            if status == "spurious":
                spurious[label] = spurious.get(label, 0) + 1
        if set(gold) != set(pred):
            mismatches.append({
                "text": eg.reference.text,
                "gold": [[*ent, status] for ent, (status, _) in zip(gold, gold_status)],
                "predicted": [[*ent, status] for ent, (status, _) in zip(pred, pred_status)],
            })
    per_type = prf.get("ents_per_type") or {}
    per_label = {
        label: {**{k: float(v) for k, v in per_type.get(label, {"p": 0.0, "r": 0.0, "f": 0.0}).items()},
                "support": support.get(label, 0)}
        for label in sorted(set(per_type) | set(support))
    }
    scores: Dict[str, Any] = {k: float(prf[k] or 0.0) for k in ("ents_p", "ents_r", "ents_f")}
    scores["ents_per_type"] = per_label
    return Evaluation(scores, per_label, mismatches, len(examples), confusion, spurious, all_predicted,
                      unscored=dict(sorted(unscored.items())), semeval=semeval_examples(predicted))


Ent = Tuple[int, int, str]


def compare_entities(gold: List[Ent], pred: List[Ent]) -> Tuple[List[Tuple[str, str]], List[Tuple[str, str]]]:
    """(status, other label) for each gold and each predicted entity. Gold: "found",
    "wrong_label" (same boundaries), "boundary" (overlapped, other boundaries) or "missed".
    Predicted: "correct", "wrong_label", "boundary" or "spurious" (overlaps no gold entity)."""

    def status(ent: Ent, others: List[Ent], exact: str, none: str) -> Tuple[str, str]:
        start, end, label = ent
        same = [o for o in others if o[0] == start and o[1] == end]
        if same:
            return (exact, label) if any(o[2] == label for o in same) else ("wrong_label", same[0][2])
        if any(o[0] < end and start < o[1] for o in others):
            return "boundary", ""
        return none, ""

    return ([status(e, pred, "found", "missed") for e in gold],
            [status(e, gold, "correct", "spurious") for e in pred])
