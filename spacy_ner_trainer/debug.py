"""Every problem in NER data before training: bad spans, label counts, lengths, duplicates, leaks."""
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from tqdm import tqdm

from .errors import ChangeLog, NerDataError
from .formats import Record, list_files
from .labels import low_count_message, low_counts, unmatched_labels_message
from .readers import Aligner, NerCorpus


@dataclass
class DataReport:
    """What `debug_data` found in one data set."""

    path: str
    n_examples: int = 0
    problems: List[NerDataError] = field(default_factory=list)
    labels: Dict[str, int] = field(default_factory=dict)  # after label_map and the labels filter
    data_labels: Dict[str, int] = field(default_factory=dict)  # after label_map, before the filter
    wanted: Optional[List[str]] = None  # the labels filter
    lengths: List[int] = field(default_factory=list)
    duplicates: int = 0
    conflicts: List[Tuple[str, str]] = field(default_factory=list)  # (first location, conflicting one)
    dev_examples: int = 0
    dev_in_train: List[str] = field(default_factory=list)  # dev locations whose text is in train
    # What the reader skips or drops as it reads (records with "answer": "reject" or
    # "ignore", empty CoNLL tokens): one line a kind, with the count and the first
    # locations, as the reader logs it.
    skipped: List[str] = field(default_factory=list)

    @property
    def errors(self) -> List[NerDataError]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.conflicts and not self.nothing_matched

    @property
    def nothing_matched(self) -> bool:
        """A labels filter that no entity matches, which training refuses."""
        return self.wanted is not None and not self.labels

    @property
    def low_labels(self) -> Dict[str, int]:
        return low_counts(self.labels)

    @property
    def low_count_message(self) -> Optional[str]:
        """The reader's warning about labels too rare to learn (labels.low_count_message)."""
        return low_count_message(self.labels, self.path)

    @property
    def labels_unmatched(self) -> Optional[str]:
        """With a labels filter that some label of it matches no entity: "no entity has label
        Foo; the data has: a, b, c"."""
        if self.wanted is None:
            return None
        return unmatched_labels_message(self.wanted, self.labels, self.data_labels)

    def length_stats(self) -> Dict[str, float]:
        if not self.lengths:
            return {}
        return {
            "min": min(self.lengths),
            "median": statistics.median(self.lengths),
            "mean": round(statistics.fmean(self.lengths), 1),
            "max": max(self.lengths),
        }


def _records(corpus: NerCorpus, nlp: Language, report: DataReport, log: ChangeLog) -> Iterator[Record]:
    """The corpus's records with the label filter applied, every label counted before it."""
    # File by file, so that a broken file is listed and the others are still checked.
    for file in list_files(corpus.path):  # NerCorpus said what the directory holds that it skips
        try:
            for record in corpus.file_records(file, nlp.vocab, log, report.problems, filtered=False):
                for span in record.spans:
                    report.data_labels[span[2]] = report.data_labels.get(span[2], 0) + 1
                if corpus.labels is not None:
                    record = record._replace(spans=[s for s in record.spans if s[2] in corpus.labels])
                yield record
        except NerDataError as err:  # what ends a file: broken JSON array syntax, an empty file
            report.problems.append(err)


def _tokens(nlp: Language, record: Record, aligner: Aligner, log: ChangeLog) -> Tuple[tuple, frozenset]:
    """The record's tokens and its entities over them."""
    if record.text is not None:
        reference = aligner.char_example(nlp, record, log).reference
        return (tuple(t.text for t in reference),
                frozenset((e.start, e.end, e.label_) for e in reference.ents))
    words = record.words if record.words is not None else [t.text for t in record.doc or ()]
    return tuple(words), frozenset(record.spans)


def debug_data(
    nlp: Language,
    path: Union[str, Path],
    *,
    format: str = "auto",
    dev: Optional[Union[str, Path]] = None,
    progress: bool = False,
    scheme: str = "auto",
    labels: Optional[Sequence[str]] = None,
    label_map: Optional[Dict[str, str]] = None,
    on_misaligned: str = "error",
    on_overlap: str = "error",
) -> DataReport:
    """Read a data set the way NerCorpus.v1 would with `nlp`'s tokenizer and the same
    settings, listing every problem instead of stopping at the first.

    Args:
        nlp (Language): the pipeline whose tokenizer the spans must align with.
        path (Union[str, Path]): the data, a file or directory.
        format (str): as for NerCorpus.v1.
        dev (Optional[Union[str, Path]]): dev data, checked for texts that are also in `path`.
        progress (bool): show a progress bar.
        scheme (str): as for NerCorpus.v1.
        labels (Optional[Sequence[str]]): as for NerCorpus.v1; one that no entity has is
            reported (DataReport.labels_unmatched) with the labels the data has.
        label_map (Optional[Dict[str, str]]): as for NerCorpus.v1.
        on_misaligned (str): as for NerCorpus.v1: a problem the policy handles is listed as
            a warning, not an error.
        on_overlap (str): as on_misaligned.
    RETURNS (DataReport): the findings.
    """
    report = DataReport(str(path), wanted=sorted(labels) if labels else None)
    aligner = Aligner(on_misaligned, on_overlap, problems=report.problems)
    corpus = NerCorpus(path, format=format, scheme=scheme, labels=labels, label_map=label_map)
    seen: Dict[int, Tuple[int, str]] = {}  # hash of the tokens -> (hash of the entities, location)
    read_log, align_log = ChangeLog(), ChangeLog()  # the aligner's changes are problems already
    for record in tqdm(_records(corpus, nlp, report, read_log), desc="debug", unit=" examples",
                       disable=not progress, leave=False):
        report.n_examples += 1
        # Label counts go by the annotations as given; duplicates and conflicts by tokens, so
        # that the same sentence matches whichever format it came in.
        for span in record.spans:
            report.labels[span[2]] = report.labels.get(span[2], 0) + 1
        words, spans = _tokens(nlp, record, aligner, align_log)
        report.lengths.append(len(words))
        where = f"{record.path}:{record.line}"
        key = hash(words)
        if key in seen:
            report.duplicates += 1
            if seen[key][0] != hash(spans):
                report.conflicts.append((seen[key][1], where))
        else:
            seen[key] = (hash(spans), where)
    report.labels = _by_count(report.labels)
    report.data_labels = _by_count(report.data_labels)
    report.skipped = read_log.summary()
    if dev is not None:
        dev_corpus = NerCorpus(dev, format=format, scheme=scheme, labels=labels, label_map=label_map)
        dev_report = DataReport(str(dev), problems=report.problems)
        for record in _records(dev_corpus, nlp, dev_report, ChangeLog()):
            report.dev_examples += 1
            if hash(_tokens(nlp, record, aligner, align_log)[0]) in seen:
                report.dev_in_train.append(f"{record.path}:{record.line}")
    return report


def _by_count(counts: Dict[str, int]) -> Dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: -item[1]))
