"""The kept original's confident pass: how sure it must be, calibrated on the training data."""
import math
from itertools import islice
from typing import Any, Iterable, List, Optional, Sequence

from spacy.language import Language
from spacy.training import Example

from .pipeline import CONFIDENT_NER, NEVER, barred, component, copy_ner, raise_bar
from .readers import same_tokens

# Chosen with bench/bench_forgetting.py (its dev-text table): the share of the training data's
# entities the original's confident entities may overlap. Each such overlap is a new-label
# entity the copy can no longer find.
CONFIDENT_OVERLAP = 0.03
# The margins tried, in the ner's score units (logits); none fitting: no confident pass.
MARGINS = (0.0, 1.0, 2.0, 3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 9.0, 10.0, 12.0, 16.0)
# Training examples the calibration predicts on (the first of the data, or all of it).
CALIBRATION_EXAMPLES = 2000


def bars(ner: Any, kept: Sequence[str], margin: float) -> List[Any]:
    """The raise_bar settings of a confident pass: kept labels need `margin`, others never start."""
    wanted = set(kept)
    return [([label for label in ner.labels if label not in wanted], -NEVER), (list(kept), margin)]


def confident_first(ner: Any, kept: Sequence[str], margin: float) -> None:
    """Makes `ner`, a copy of a kept original run before the copy that learns new labels, set
    only the kept labels' entities it is sure of: it starts one only where that move scores
    `margin` more than it did (every kept label alike, so it never changes an entity's label),
    and never starts an entity of any other label.

    The copy that learns new labels from in-domain data claims words it has never seen in that
    domain as new-label entities (a city in a tweet becomes a Disease). The original's
    confident entities, set first, are kept by every ner after them; the copy takes the words
    around them, and the original, last, finds its less confident entities where the copy
    found nothing.

    Args:
        ner (Any): the copy of the kept ner; its bias is changed in place.
        kept (Sequence[str]): the labels the original keeps (it knows them, the data lacks them).
        margin (float): in the units of the ner's scores (logits).
    """
    for labels, bar in bars(ner, kept, margin):
        raise_bar(ner, labels, bar)


def overlap(ner: Any, kept: Sequence[str], margin: float, gold: Sequence[Any]) -> float:
    """The share of the gold entities that the confident pass at `margin` overlaps.

    Args:
        ner (Any): the unchanged copy of the original (a ner with its own tok2vec).
        kept (Sequence[str]): the kept labels.
        margin (float): the margin tried.
        gold (Sequence[Doc]): the training data's reference docs.
    RETURNS (float): from 0 to 1.
    """
    n = sum(len(doc.ents) for doc in gold)
    with barred(ner, bars(ner, kept, margin)):
        predicted = list(ner.pipe(same_tokens(doc.vocab, doc) for doc in gold))
    hits = sum(any(e.start < g.end and g.start < e.end for e in doc.ents)
               for doc, ref in zip(predicted, gold) for g in ref.ents)
    return hits / n if n else 0.0


def calibrate(ner: Any, kept: Sequence[str], examples: Iterable[Example],
              max_overlap: float = CONFIDENT_OVERLAP) -> float:
    """The smallest margin of MARGINS at which the confident pass overlaps at most
    `max_overlap` of the gold entities of (the first CALIBRATION_EXAMPLES) `examples`;
    math.inf when none does, or there are no entities.

    Args:
        ner (Any): the unchanged copy of the original.
        kept (Sequence[str]): the kept labels.
        examples (Iterable[Example]): the training data.
        max_overlap (float): the share of the gold entities the pass may overlap.
    RETURNS (float): the margin.
    """
    gold = [eg.reference for eg in islice(examples, CALIBRATION_EXAMPLES)]
    if not any(doc.ents for doc in gold):
        return math.inf
    # The overlap falls as the margin rises: bisect for the first margin that fits.
    low, high = 0, len(MARGINS)
    while low < high:
        middle = (low + high) // 2
        if overlap(ner, kept, MARGINS[middle], gold) <= max_overlap:
            high = middle
        else:
            low = middle + 1
    return MARGINS[low] if low < len(MARGINS) else math.inf


def add_confident_pass(nlp: Language, kept: Sequence[str], before: str, examples: Iterable[Example],
                       margin: Optional[float] = None, name: str = CONFIDENT_NER,
                       max_overlap: float = CONFIDENT_OVERLAP) -> Optional[float]:
    """Adds the kept original's confident pass, a copy of `ner` named `name`, before `before`.

    Args:
        nlp (Language): the pipeline with the kept `ner`.
        kept (Sequence[str]): the labels it keeps.
        before (str): the component to place the pass before (the copy that learns).
        examples (Iterable[Example]): the training data, for the calibration.
        margin (Optional[float]): None calibrates it (calibrate); math.inf adds no pass.
        name (str): the pass's name (free in the pipeline).
        max_overlap (float): for the calibration, see calibrate.
    RETURNS (Optional[float]): the margin, or None when no pass was added.
    """
    if margin is not None and not math.isfinite(margin):
        return None
    copy_ner(nlp, "ner", name, before=before)
    ner = component(nlp, name)
    if margin is None:
        margin = calibrate(ner, kept, examples, max_overlap)
        if not math.isfinite(margin):
            nlp.remove_pipe(name)
            return None
    confident_first(ner, kept, margin)
    return margin
