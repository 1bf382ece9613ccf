"""Post-training verification: scores per label, mismatches, the disk round trip, other components."""
import tempfile
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

import spacy
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import resolve_dot_names
from wasabi import msg, table

from .errors import logger
from .readers import same_tokens, to_examples

DEFAULT_MIN_RECALL = 0.8
MAX_LISTED = 50  # differences kept in a report


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

    def score_rows(self) -> List[Tuple[str, str, str, str, int]]:
        """(label, P, R, F, support) per label, then ALL: the table every report shows."""
        rows = [(label, f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}", s["support"])
                for label, s in sorted(self.per_label.items())]
        scores = self.scores
        rows.append(("ALL", f"{scores['ents_p']:.3f}", f"{scores['ents_r']:.3f}", f"{scores['ents_f']:.3f}",
                     sum(s["support"] for s in self.per_label.values())))
        return rows

    def confusion_rows(self) -> List[Tuple[str, int, int, int, str, int]]:
        """(gold label, found, missed, other boundaries, predicted as other labels, spurious)."""
        rows = []
        for label in sorted(set(self.confusion) | set(self.spurious)):
            row = self.confusion.get(label, {"found": 0, "missed": 0, "boundary": 0, "wrong_label": {}})
            wrong = ", ".join(f"{other} {n}" for other, n in sorted(row["wrong_label"].items())) or "0"
            rows.append((label, row["found"], row["missed"], row["boundary"], wrong, self.spurious.get(label, 0)))
        return rows


@dataclass
class VerificationReport:
    """What `verify` found. `ok` holds when recall reaches `min_recall`, the reloaded pipeline
    predicts the same, and (with a reference) no other component's output changed."""

    evaluation: Evaluation
    min_recall: float
    round_trip_ok: Optional[bool] = None
    round_trip_diffs: List[Dict[str, Any]] = field(default_factory=list)
    components_ok: Optional[bool] = None
    component_diffs: List[Dict[str, Any]] = field(default_factory=list)
    # Per old label: agreement (P/R/F, support) with the pipeline before fine-tuning.
    retention: Optional[Dict[str, Dict[str, float]]] = None

    n_examples = property(lambda self: self.evaluation.n_examples)
    precision = property(lambda self: self.evaluation.scores["ents_p"])
    recall = property(lambda self: self.evaluation.scores["ents_r"])
    f = property(lambda self: self.evaluation.scores["ents_f"])
    per_label = property(lambda self: self.evaluation.per_label)
    mismatches = property(lambda self: self.evaluation.mismatches)

    @property
    def ok(self) -> bool:
        return (
            self.recall >= self.min_recall
            and self.round_trip_ok is not False
            and self.components_ok is not False
        )

    def to_dict(self) -> Dict[str, Any]:
        """JSON-serializable; lists at most MAX_LISTED mismatches and differences."""
        evaluation = self.evaluation
        return {
            "ok": self.ok,
            "n_examples": self.n_examples,
            "precision": self.precision,
            "recall": self.recall,
            "f": self.f,
            "min_recall": self.min_recall,
            "per_label": evaluation.per_label,
            "confusion": evaluation.confusion,
            "spurious": evaluation.spurious,
            "n_mismatches": len(evaluation.mismatches),
            "mismatches": evaluation.mismatches[:MAX_LISTED],
            "round_trip_ok": self.round_trip_ok,
            "round_trip_diffs": self.round_trip_diffs[:MAX_LISTED],
            "components_ok": self.components_ok,
            "component_diffs": self.component_diffs[:MAX_LISTED],
            "retention": self.retention,
        }

    def table(self) -> str:
        """The per-label table, as printed by the CLI and the callback."""
        return table(self.evaluation.score_rows(), header=("label", "P", "R", "F", "support"), divider=True,
                     aligns=("l", "r", "r", "r", "r"))


def _fresh(nlp: Language, examples: List[Example]) -> List[Doc]:
    # New docs over the reference tokens, so no earlier prediction leaks into this one.
    return [same_tokens(nlp.vocab, eg.predicted) for eg in examples]


def predict(nlp: Language, examples: List[Example], batch_size: int = 256) -> List[Example]:
    """`nlp`'s predictions as new Examples against the same gold."""
    docs = nlp.pipe(_fresh(nlp, examples), batch_size=batch_size)
    return [Example(doc, eg.reference) for doc, eg in zip(docs, examples)]


def _ents(doc: Doc) -> List[Tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


def evaluate(nlp: Language, examples: Iterable[Example]) -> Evaluation:
    """Precision, recall and F per label and overall (spaCy's scorer), with support, and the
    examples whose predicted entities differ from the gold ones."""
    examples = list(examples)
    predicted = predict(nlp, examples)
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
    scores = {k: float(prf[k] or 0.0) for k in ("ents_p", "ents_r", "ents_f")}
    scores["ents_per_type"] = per_label
    return Evaluation(scores, per_label, mismatches, len(examples), confusion, spurious,
                      [_ents(eg.predicted) for eg in predicted])


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


def _component_view(doc: Doc) -> List[Tuple]:
    return [
        (t.tag_, t.pos_, t.dep_, t.head.i, t.lemma_, str(t.morph),
         t.is_sent_start if doc.has_annotation("SENT_START") else None)
        for t in doc
    ]


def _round_trip(nlp: Language, examples: List[Example], in_memory: List[List[Tuple[int, int, str]]],
                saved: Optional[Path]) -> List[Dict[str, Any]]:
    if saved is not None:
        reloaded = spacy.load(saved)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            nlp.to_disk(Path(tmp) / "model")
            reloaded = spacy.load(Path(tmp) / "model")
    again = reloaded.pipe(_fresh(reloaded, examples), batch_size=256)
    diffs = []
    for ents, doc in zip(in_memory, again):
        if ents != _ents(doc):
            diffs.append({"text": doc.text, "in_memory": ents, "reloaded": _ents(doc)})
    return diffs


def _component_diffs(nlp: Language, reference: Language, examples: List[Example]) -> List[Dict[str, Any]]:
    ours = nlp.pipe(_fresh(nlp, examples), batch_size=256)
    theirs = reference.pipe(_fresh(reference, examples), batch_size=256)
    diffs = []
    for doc, ref in zip(ours, theirs):
        if _component_view(doc) != _component_view(ref):
            changed = [t.i for t, a, b in zip(doc, _component_view(doc), _component_view(ref)) if a != b]
            diffs.append({"text": doc.text, "tokens": changed[:10]})
    return diffs


def verify(
    nlp: Language,
    examples: Any,
    *,
    reference: Optional[Language] = None,
    min_recall: float = DEFAULT_MIN_RECALL,
    round_trip: Union[bool, str, Path] = True,
    retention: Optional[List[Example]] = None,
) -> VerificationReport:
    """Check a trained pipeline: are the given entities recognized, does the pipeline predict
    the same after `to_disk` and `spacy.load`, and did training leave the other components alone?

    Args:
        nlp (Language): the trained pipeline.
        examples: gold Examples, seed tuples, a corpus callable or a path (as for `train`).
        reference (Optional[Language]): the pipeline before training; every other component's
            output (tags, dependencies, lemmas, morphology, sentence starts) must be identical.
        min_recall (float): overall recall that `report.ok` requires.
        round_trip (Union[bool, str, Path]): reload the pipeline and compare its predictions:
            True saves it to a temporary directory first; a path names a copy already saved.
        retention (Optional[List[Example]]): the original pipeline's predictions on held-back
            text (`TrainResult.retention_examples`): agreement per old label is reported.
    RETURNS (VerificationReport): the report.
    """
    examples = list(to_examples(nlp, examples))
    report = VerificationReport(evaluation=evaluate(nlp, examples), min_recall=min_recall)
    if round_trip:
        saved = None if round_trip is True else Path(round_trip)
        diffs = _round_trip(nlp, examples, report.evaluation.predicted, saved)
        report.round_trip_ok, report.round_trip_diffs = not diffs, diffs
    if retention:
        labels = {ent.label_ for eg in retention for ent in eg.reference.ents}
        per_label = evaluate(nlp, retention).per_label
        report.retention = {label: s for label, s in per_label.items() if label in labels}
    if reference is not None:
        diffs = _component_diffs(nlp, reference, examples)
        report.components_ok, report.component_diffs = not diffs, diffs
    return report


def verify_callback_v1(
    max_examples: int = 200,
    min_recall: float = 0.0,
    on_fail: str = "warn",
    round_trip: bool = False,
) -> Callable[[Language], Language]:
    """Registered as spacy-ner-trainer.verify.v1, for [training.before_to_disk].

    At every checkpoint spaCy saves, verifies on the first `max_examples` of the training
    and dev corpora, prints a compact per-label table and stores the reports in
    nlp.meta["spacy_ner_trainer"], so that they ship in model-best and model-last meta.json.

    Args:
        max_examples (int): examples taken from each corpus; keeps the check cheap.
        min_recall (float): recall on the training sample that the check requires.
        on_fail (str): "warn", or "error" to stop training when a check fails.
        round_trip (bool): also save, reload and compare (costs a save per checkpoint).
    RETURNS (Callable[[Language], Language]): the callback.
    """
    if on_fail not in ("warn", "error"):
        raise ValueError(f"on_fail={on_fail!r} is not one of 'warn', 'error'")
    samples: Dict[str, List[Example]] = {}

    def before_to_disk(nlp: Language) -> Language:
        if not samples:
            # Resolved once: the corpora named by [training] train_corpus and dev_corpus.
            config = nlp.config.interpolate()  # nlp.config keeps ${paths.train} and the like
            names = [config["training"]["train_corpus"], config["training"]["dev_corpus"]]
            for key, corpus in zip(("train", "dev"), resolve_dot_names(config, names)):
                samples[key] = list(islice(corpus(nlp), max_examples))
        found = {}
        for key, sample in samples.items():
            report = verify(nlp, sample, min_recall=min_recall if key == "train" else 0.0,
                            round_trip=round_trip and key == "train")
            found[key] = report
            msg.text(f"verify ({key}, {report.n_examples} examples): "
                     f"P {report.precision:.3f} R {report.recall:.3f} F {report.f:.3f}  " +
                     "  ".join(f"{label} {s['f']:.2f}" for label, s in sorted(report.per_label.items())))
        nlp.meta["spacy_ner_trainer"] = {"verify": {key: r.to_dict() for key, r in found.items()}}
        failed = [key for key, r in found.items() if not r.ok]
        if failed:
            why = (f"verification failed on {', '.join(failed)}: recall "
                   f"{found['train'].recall:.3f} (minimum {min_recall})")
            if on_fail == "error":
                raise RuntimeError(why)
            logger.warning(why)
        return nlp

    return before_to_disk
