"""Label collection: entity counts per label, and the move table that `ner.initialize` takes."""
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc
from spacy.training import Example

from .errors import NerDataError, logger
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


def low_counts(counts: Dict[str, int], minimum: int = LOW_COUNT) -> Dict[str, int]:
    """The labels with fewer than `minimum` entities, and their counts."""
    return {label: n for label, n in counts.items() if n < minimum}


def low_count_message(counts: Dict[str, int], source: str, minimum: int = LOW_COUNT) -> Optional[str]:
    """The one warning about labels too rare to learn, or None when there are none."""
    low = low_counts(counts, minimum)
    if not low:
        return None
    listed = ", ".join(f"{label} ({n})" for label, n in low.items())
    return f"{source}: labels with fewer than {minimum} examples: {listed}; the model will hardly learn them"


def warn_low_counts(counts: Dict[str, int], source: str, minimum: int = LOW_COUNT) -> Optional[str]:
    """Logs `low_count_message` (if any) and returns it, for a CLI to print as well."""
    message = low_count_message(counts, source, minimum)
    if message:
        logger.warning("%s", message)
    return message


def unmatched_labels_message(wanted: Iterable[str], counts: Dict[str, int],
                             data_counts: Dict[str, int]) -> Optional[str]:
    """What a `labels` filter asks for that no entity has, and which labels the data has:
    "no entity has label Foo; the data has: a, b, c". None when every wanted label is found.

    Args:
        wanted (Iterable[str]): the labels asked for (after label_map).
        counts (Dict[str, int]): entity counts per label after the filter.
        data_counts (Dict[str, int]): entity counts per label before it (after label_map).
    RETURNS (Optional[str]): the message, or None.
    """
    absent = sorted(set(wanted) - set(counts))
    if not absent:
        return None
    has = ", ".join(sorted(data_counts)) if data_counts else "no entities at all"
    noun = "label" if len(absent) == 1 else "labels"
    return f"no entity has {noun} {', '.join(absent)}; the data has: {has}"


def check_label_filter(corpus: NerCorpus, counts: Optional[Dict[str, int]] = None) -> Dict[str, int]:
    """Checks a corpus's `labels` filter against its data, for the training loop: a filter
    that matches no entity raises NerDataError ("no entity has label Foo; the data has: a,
    b, c"); labels it asks for that no entity has are warned about. Only then is the data
    read once more, to find the labels it has.

    Args:
        corpus (NerCorpus): the corpus, with its `labels` filter (or none: nothing to check).
        counts (Optional[Dict[str, int]]): its (filtered) label counts, if already counted.
    RETURNS (Dict[str, int]): the filtered label counts.
    """
    counts = count_labels(corpus) if counts is None else counts
    if corpus.labels is None or corpus.labels <= set(counts):
        return counts
    message = unmatched_labels_message(corpus.labels, counts, count_labels(corpus, filtered=False))
    if not counts:
        raise NerDataError(f"{message}; fix --labels (labels) or --label-map (label_map)", corpus.path)
    logger.warning("%s: %s", corpus.path, message)
    return counts


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
    counts = check_label_filter(corpus)
    warn_low_counts(counts, str(path))
    return move_table(counts)


def count_labels(corpus: NerCorpus, filtered: bool = True) -> Dict[str, int]:
    """Entity counts per label straight from the annotations, without tokenizing: after
    the corpus's label_map and, if `filtered`, its `labels` filter."""
    counts: Counter = Counter()
    for record in corpus.records(filtered=filtered):
        counts.update(span[2] for span in record.spans)
    return dict(counts.most_common())
