"""Every problem in NER data before training: bad spans, label counts, lengths, duplicates, leaks."""
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from tqdm import tqdm

from .errors import ChangeLog, NerDataError
from .formats import Record, list_files
from .labels import LOW_COUNT
from .readers import Aligner, NerCorpus


@dataclass
class DataReport:
    """What `debug_data` found in one data set."""

    path: str
    n_examples: int = 0
    problems: List[NerDataError] = field(default_factory=list)
    labels: Dict[str, int] = field(default_factory=dict)
    lengths: List[int] = field(default_factory=list)
    duplicates: int = 0
    conflicts: List[Tuple[str, str]] = field(default_factory=list)  # (first location, conflicting one)
    dev_examples: int = 0
    dev_in_train: List[str] = field(default_factory=list)  # dev locations whose text is in train

    @property
    def errors(self) -> List[NerDataError]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.conflicts

    @property
    def low_labels(self) -> Dict[str, int]:
        return {label: n for label, n in self.labels.items() if n < LOW_COUNT}

    def length_stats(self) -> Dict[str, float]:
        if not self.lengths:
            return {}
        return {
            "min": min(self.lengths),
            "median": statistics.median(self.lengths),
            "mean": round(statistics.fmean(self.lengths), 1),
            "max": max(self.lengths),
        }


def _records(path: Union[str, Path], format: str, nlp: Language, report: DataReport) -> Iterator[Record]:
    # File by file, so that a broken file is listed and the others are still checked.
    log = ChangeLog()
    for file in list_files(path):
        try:
            yield from NerCorpus(file, format=format).records(nlp.vocab, log, report.problems)
        except NerDataError as err:  # what ends a file: broken JSON array syntax, an empty file
            report.problems.append(err)


def _tokens(nlp: Language, record: Record, aligner: Aligner, log: ChangeLog) -> Tuple[tuple, frozenset]:
    """The record's tokens and its entities over them."""
    if record.text is not None:
        reference = aligner.char_example(nlp, record, log).reference
        return (tuple(t.text for t in reference),
                frozenset((e.start, e.end, e.label_) for e in reference.ents))
    words = record.words if record.words is not None else [t.text for t in record.doc]
    return tuple(words), frozenset(record.spans)


def debug_data(
    nlp: Language,
    path: Union[str, Path],
    *,
    format: str = "auto",
    dev: Optional[Union[str, Path]] = None,
    progress: bool = False,
) -> DataReport:
    """Read a data set the way NerCorpus.v1 would with `nlp`'s tokenizer, listing every problem
    instead of stopping at the first.

    Args:
        nlp (Language): the pipeline whose tokenizer the spans must align with.
        path (Union[str, Path]): the data, a file or directory.
        format (str): as for NerCorpus.v1.
        dev (Optional[Union[str, Path]]): dev data, checked for texts that are also in `path`.
        progress (bool): show a progress bar.
    RETURNS (DataReport): the findings.
    """
    report = DataReport(str(path))
    aligner = Aligner(problems=report.problems)
    seen: Dict[int, Tuple[int, str]] = {}  # hash of the tokens -> (hash of the entities, location)
    log = ChangeLog()
    for record in tqdm(_records(path, format, nlp, report), desc="debug", unit=" examples",
                       disable=not progress, leave=False):
        report.n_examples += 1
        # Label counts go by the annotations as given; duplicates and conflicts by tokens, so
        # that the same sentence matches whichever format it came in.
        for span in record.spans:
            report.labels[span[2]] = report.labels.get(span[2], 0) + 1
        words, spans = _tokens(nlp, record, aligner, log)
        report.lengths.append(len(words))
        where = f"{record.path}:{record.line}"
        key = hash(words)
        if key in seen:
            report.duplicates += 1
            if seen[key][0] != hash(spans):
                report.conflicts.append((seen[key][1], where))
        else:
            seen[key] = (hash(spans), where)
    report.labels = dict(sorted(report.labels.items(), key=lambda item: -item[1]))
    if dev is not None:
        for record in _records(dev, format, nlp, report):
            report.dev_examples += 1
            if hash(_tokens(nlp, record, aligner, log)[0]) in seen:
                report.dev_in_train.append(f"{record.path}:{record.line}")
    return report
