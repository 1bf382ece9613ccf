"""Label collection: entity counts per label, and the move table that `ner.initialize` takes."""
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc
from spacy.training import Example

from .errors import logger
from .readers import NerCorpus

# spaCy's BiluoPushDown actions: MISSING, BEGIN, IN, LAST, UNIT, OUT.
_MISSING, _BEGIN, _IN, _LAST, _UNIT, _OUT = "0", "1", "2", "3", "4", "5"
LOW_COUNT = 20

Annotated = Union[Example, Doc, Tuple[str, dict]]


def collect_labels(examples: Iterable[Annotated]) -> Dict[str, int]:
    """Count gold entities per label.

    Args:
        examples (Iterable[Union[Example, Doc, Tuple[str, dict]]]): Examples (their reference
            side is counted), Docs, or seed tuples (text, {"entities": [(start, end, label)]}).
    RETURNS (Dict[str, int]): entity count per label, most frequent first.
    """
    counts: Counter = Counter()
    for item in examples:
        if isinstance(item, Example):
            counts.update(ent.label_ for ent in item.reference.ents)
        elif isinstance(item, Doc):
            counts.update(ent.label_ for ent in item.ents)
        else:
            counts.update(entity[2] for entity in item[1].get("entities", []))
    return dict(counts.most_common())


def move_table(counts: Dict[str, int]) -> Dict[str, Dict[str, int]]:
    """The table `spacy init labels` writes for `ner`, which `ner.initialize(labels=...)` takes."""
    table: Dict[str, Dict[str, int]] = {_MISSING: {}}
    for action in (_BEGIN, _IN, _LAST, _UNIT):
        table[action] = dict(counts)
    table[_UNIT][""] = 1  # a token prohibited from being in an entity
    table[_OUT] = {"": 1}
    return table


def warn_low_counts(counts: Dict[str, int], source: str, minimum: int = LOW_COUNT) -> None:
    low = {label: n for label, n in counts.items() if n < minimum}
    if low:
        listed = ", ".join(f"{label} ({n})" for label, n in low.items())
        logger.warning(
            "%s: labels with fewer than %d examples: %s; the model will hardly learn them",
            source, minimum, listed,
        )


def ner_labels_v1(
    path: Union[str, Path],
    format: str = "auto",
    labels: Optional[Sequence[str]] = None,
    label_map: Optional[Dict[str, str]] = None,
    scheme: str = "auto",
) -> Dict[str, Dict[str, int]]:
    """Registered as spacy-ner-trainer.ner_labels.v1, for [initialize.components.ner.labels].

    Reads the annotations once, without tokenizing, and returns the move table, so that
    `ner.initialize` needs no pass over the training data to find its labels.

    Args:
        path (Union[str, Path]): a file or directory, as for NerCorpus.v1.
        format (str): as for NerCorpus.v1.
        labels (Optional[Sequence[str]]): keep only these labels (after label_map).
        label_map (Optional[Dict[str, str]]): rename labels.
        scheme (str): CoNLL tag scheme, as for NerCorpus.v1.
    RETURNS (Dict[str, Dict[str, int]]): the move table.
    """
    corpus = NerCorpus(path, format=format, labels=labels, label_map=label_map, scheme=scheme)
    counts = count_labels(corpus)
    warn_low_counts(counts, str(path))
    return move_table(counts)


def count_labels(corpus: NerCorpus) -> Dict[str, int]:
    """Entity counts per label straight from the annotations, without tokenizing."""
    counts: Counter = Counter()
    for record in corpus.records():
        counts.update(span[2] for span in record.spans)
    return dict(counts.most_common())
