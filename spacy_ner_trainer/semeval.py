"""Partial-match scoring (SemEval-2013 task 9.1): strict, exact, partial and type, as nervaluate counts them."""
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from spacy.tokens import Doc
from spacy.training import Example

# (start, end, label), end exclusive: token or character offsets, the same for gold and predicted.
Ent = Tuple[int, int, str]
# strict: same boundaries and label; exact: same boundaries; partial: overlapping boundaries
# (half credit); type: overlapping boundaries and the same label. nervaluate calls "type" "ent_type".
SCHEMES = ("strict", "exact", "partial", "type")
COUNTS = ("correct", "incorrect", "partial", "missed", "spurious")
SEMEVAL_HEADER = ("scheme", *COUNTS, "P", "R", "F")  # the columns of semeval_rows
# nervaluate's default: a prediction overlaps a gold entity when it covers at least this
# percentage of the gold entity's length, which for entities of up to 100 tokens is any overlap.
DEFAULT_MIN_OVERLAP = 1.0


def _overlaps(pred: Ent, gold: Ent, min_overlap: float) -> bool:
    if pred[0] >= gold[1] or pred[1] <= gold[0]:
        return False
    overlap = min(pred[1], gold[1]) - max(pred[0], gold[0])
    # The same arithmetic as nervaluate, so that the threshold falls on the same side.
    return (overlap / (gold[1] - gold[0])) * 100.0 >= min_overlap


def _count(gold: Sequence[Ent], pred: Sequence[Ent], scheme: str, min_overlap: float) -> List[int]:
    """[correct, incorrect, partial, missed, spurious] of one example under one scheme.

    Each prediction, in order, claims one gold entity not yet claimed: a match of the scheme if
    there is one (for "type", the one with the closest boundaries), else the first it overlaps.
    """
    counts = [0, 0, 0, 0, 0]
    claimed: Set[int] = set()
    for p in pred:
        match: Optional[int] = None
        overlapping: Optional[int] = None
        closest: Optional[int] = None
        for i, g in enumerate(gold):
            if i in claimed:
                continue
            if scheme == "type":
                if not _overlaps(p, g, min_overlap):
                    continue
                if p[2] == g[2]:
                    distance = abs(p[0] - g[0]) + abs(p[1] - g[1])
                    if closest is None or distance < closest:
                        match, closest = i, distance
                elif overlapping is None:
                    overlapping = i
            elif p[0] == g[0] and p[1] == g[1] and (scheme != "strict" or p[2] == g[2]):
                match = i
                break
            elif overlapping is None and _overlaps(p, g, min_overlap):
                overlapping = i
        if match is not None:
            counts[0] += 1
            claimed.add(match)
        elif overlapping is not None:
            counts[2 if scheme == "partial" else 1] += 1
            claimed.add(overlapping)
        else:
            counts[4] += 1
    counts[3] = len(gold) - len(claimed)
    return counts


def _metrics(counts: Sequence[int]) -> Dict[str, Any]:
    correct, incorrect, partial, missed, spurious = counts
    actual = correct + incorrect + partial + spurious
    possible = correct + incorrect + partial + missed
    # A partial match earns half; only the partial scheme has any.
    p = (correct + 0.5 * partial) / actual if actual > 0 else 0.0
    r = (correct + 0.5 * partial) / possible if possible > 0 else 0.0
    f = 2 * (p * r) / (p + r) if (p + r) > 0 else 0.0
    return {**dict(zip(COUNTS, counts)), "possible": possible, "actual": actual, "p": p, "r": r, "f": f}


def semeval_scores(
    pairs: Iterable[Tuple[Sequence[Ent], Sequence[Ent]]],
    labels: Optional[Iterable[str]] = None,
    min_overlap: float = DEFAULT_MIN_OVERLAP,
) -> Dict[str, Any]:
    """Correct, incorrect, partial, missed and spurious entities, possible and actual, and
    P/R/F under the four SemEval-2013 schemes, overall and per label: the numbers nervaluate's
    Evaluator gives for the same entities.

    Args:
        pairs: per example, (gold entities, predicted entities) as (start, end, label) with an
            exclusive end. Predictions are matched in the order given.
        labels (Optional[Iterable[str]]): score only entities of these labels; None scores all.
        min_overlap (float): the percentage of a gold entity a prediction must cover to overlap it.
    RETURNS (Dict[str, Any]): {"overall": {scheme: scores}, "per_label": {label: {scheme: scores}}},
        each scores a dict of the counts, "possible", "actual", "p", "r" and "f". Per label,
        only that label's entities are compared, so a label confused with another counts a
        miss and a spurious entity there, an "incorrect" overall.
    """
    if not 0 < min_overlap <= 100:
        raise ValueError(f"min_overlap {min_overlap} is not a percentage: use a value above 0, up to 100")
    keep = set(labels) if labels is not None else None
    overall = {scheme: [0] * len(COUNTS) for scheme in SCHEMES}
    per_label: Dict[str, Dict[str, List[int]]] = {}
    for gold, pred in pairs:
        if keep is not None:
            gold = [e for e in gold if e[2] in keep]
            pred = [e for e in pred if e[2] in keep]
        by_label: Dict[str, Tuple[List[Ent], List[Ent]]] = {}
        for index, ents in enumerate((gold, pred)):
            for ent in ents:
                by_label.setdefault(ent[2], ([], []))[index].append(ent)
        # Most examples are predicted exactly right (or hold nothing): every entity is correct.
        same = list(gold) == list(pred)
        for scheme in SCHEMES:
            _add(overall[scheme], [len(gold), 0, 0, 0, 0] if same else _count(gold, pred, scheme, min_overlap))
            for label, (label_gold, label_pred) in by_label.items():
                totals = per_label.setdefault(label, {s: [0] * len(COUNTS) for s in SCHEMES})
                _add(totals[scheme], [len(label_gold), 0, 0, 0, 0] if same
                     else _count(label_gold, label_pred, scheme, min_overlap))
    return {
        "overall": {scheme: _metrics(counts) for scheme, counts in overall.items()},
        "per_label": {label: {scheme: _metrics(counts) for scheme, counts in schemes.items()}
                      for label, schemes in sorted(per_label.items())},
    }


def _add(total: List[int], counts: List[int]) -> None:
    for i, n in enumerate(counts):
        total[i] += n


def token_entities(doc: Doc) -> List[Ent]:
    """`doc`'s entities as token offsets: what nervaluate scores from BIO tags."""
    return [(ent.start, ent.end, ent.label_) for ent in doc.ents]


def semeval_examples(examples: Iterable[Example], labels: Optional[Iterable[str]] = None) -> Dict[str, Any]:
    """`semeval_scores` of predicted Examples, on token offsets (reference and predicted docs
    share their tokens, as `evaluate.predict` makes them)."""
    return semeval_scores(((token_entities(eg.reference), token_entities(eg.predicted)) for eg in examples), labels)


def semeval_rows(scores: Dict[str, Any], label: Optional[str] = None) -> List[Tuple[Any, ...]]:
    """(scheme, correct, incorrect, partial, missed, spurious, P, R, F) per scheme, overall or
    for one label: a table to print under SEMEVAL_HEADER."""
    schemes = scores["overall"] if label is None else scores["per_label"].get(label, {})
    return [(scheme, *(s[k] for k in COUNTS), f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}")
            for scheme, s in schemes.items()]
