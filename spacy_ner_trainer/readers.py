"""The NER corpus reader: seed tuples, span JSONL, CoNLL/IOB and DocBins to `Example`s."""
import re
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union, cast

import numpy
from spacy.attrs import ENT_IOB, ENT_TYPE
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import filter_spans
from spacy.vocab import Vocab
from thinc.types import Ints2d

from .errors import ChangeLog, NerDataError, UsageError, logger
from .formats import FORMATS, SCHEMES, Record, cli_option, iter_records, list_files, parse_record

MISALIGNED_POLICIES = ("error", "expand", "contract", "skip")
OVERLAP_POLICIES = ("error", "longest", "skip")
_CONTEXT = 20  # characters shown either side of a bad span
_ENT_ATTRS = [ENT_IOB, ENT_TYPE]
_MISSING, _INSIDE, _OUTSIDE, _BEGIN = 0, 1, 2, 3  # Token.ent_iob values
# What no entity type holds: markup, quotes, control characters.
_ODD_LABEL = re.compile(r"[<>\"'`\u2018\u2019\u201c\u201d\x00-\x1f\x7f-\x9f]")


def ner_corpus_v1(
    path: Union[str, Path],
    format: str = "auto",
    on_misaligned: str = "error",
    on_overlap: str = "error",
    labels: Optional[Sequence[str]] = None,
    label_map: Optional[Dict[str, str]] = None,
    limit: int = 0,
    max_length: int = 0,
    scheme: str = "auto",
    augmenter: Optional[Callable[[Language, Example], Iterable[Example]]] = None,
    gold_preproc: bool = False,
) -> Callable[[Language], Iterator[Example]]:
    """Registered as spacy-ner-trainer.NerCorpus.v1: a corpus for [corpora.train]/[corpora.dev].
    It takes every argument of spacy.Corpus.v1, so a config's reader names can be swapped.

    Args:
        path (Union[str, Path]): a file, or a directory whose supported files are read in
            sorted order (hidden files and folders and saved pipelines in it are skipped).
        format (str): "auto" (decided from suffix and content), "tuples", "spans", "conll"
            or "docbin".
        on_misaligned (str): a character span whose ends are not token boundaries: "error",
            "expand", "contract" or "skip" (its tokens are left unannotated).
        on_overlap (str): overlapping spans: "error", "longest" (as util.filter_spans) or
            "skip" (all of them, their tokens left unannotated).
        labels (Optional[Sequence[str]]): keep only these labels (after label_map).
        label_map (Optional[Dict[str, str]]): rename labels, e.g. {"per": "PERSON"}.
        limit (int): stop after this many examples; 0 for all.
        max_length (int): examples of this many tokens or more are split into sentences
            when the data has them, else skipped; 0 for no limit.
        scheme (str): CoNLL tag scheme: "auto" (per file), "iob1", "iob2" or "biluo".
        augmenter (Optional[Callable]): a spaCy data augmenter, as in spacy.Corpus.v1.
        gold_preproc (bool): as in spacy.Corpus.v1: the predicted side of an example gets the
            gold tokens, and DocBin documents are split into their gold sentences. Without
            it, DocBin documents whose spaces are known are tokenized by the pipeline, as
            spacy.Corpus.v1 does. CoNLL words (whose spaces are unknown) and character
            offsets (aligned to the pipeline's tokens) come out the same either way.
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    return NerCorpus(
        path,
        format=format,
        on_misaligned=on_misaligned,
        on_overlap=on_overlap,
        labels=labels,
        label_map=label_map,
        limit=limit,
        max_length=max_length,
        scheme=scheme,
        augmenter=augmenter,
        gold_preproc=gold_preproc,
    )


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        flag = "--" + name.replace("_", "-")
        raise UsageError(f"{name}={value!r} ({flag}) is not one of {', '.join(map(repr, choices))}")


class NerCorpus:
    """Streams `Example`s from NER files: one file is read at a time, one record at a time."""

    def __init__(
        self,
        path: Union[str, Path],
        *,
        format: str = "auto",
        on_misaligned: str = "error",
        on_overlap: str = "error",
        labels: Optional[Sequence[str]] = None,
        label_map: Optional[Dict[str, str]] = None,
        limit: int = 0,
        max_length: int = 0,
        scheme: str = "auto",
        augmenter: Optional[Callable[[Language, Example], Iterable[Example]]] = None,
        gold_preproc: bool = False,
    ):
        _check_choice("format", format, FORMATS)
        _check_choice("scheme", scheme, SCHEMES)
        self.aligner = Aligner(on_misaligned, on_overlap)
        self.path = Path(path)
        # A missing path fails when the config is loaded, not mid-training; what a directory
        # holds that is not read is said once, here.
        list_files(self.path, report=True)
        self.format = format
        self.scheme = scheme
        self.labels = set(labels) if labels else None
        self.label_map = dict(label_map or {})
        self.limit = limit
        self.max_length = max_length
        self.augmenter = augmenter
        self.gold_preproc = gold_preproc
        self._reported = False
        self._checked_labels: Set[str] = set()

    def records(self, vocab: Optional[Vocab] = None, log: Optional[ChangeLog] = None,
                problems: Optional[List[NerDataError]] = None, filtered: bool = True) -> Iterator[Record]:
        """The raw records of every file, labels renamed and (unless not `filtered`) filtered,
        before alignment; with a `problems` list, bad records are listed there and skipped
        instead of raised."""
        for file in list_files(self.path):
            yield from self.file_records(file, vocab, log, problems, filtered)

    def file_records(self, file: Path, vocab: Optional[Vocab] = None, log: Optional[ChangeLog] = None,
                     problems: Optional[List[NerDataError]] = None, filtered: bool = True) -> Iterator[Record]:
        """`records` of one of the corpus's files."""
        relabel = bool(self.label_map) or (filtered and self.labels is not None)
        for record in iter_records(file, self.format, scheme=self.scheme, vocab=vocab, log=log,
                                   problems=problems):
            if relabel:
                record = record._replace(spans=self.relabel(record.spans, filtered))
            for span in record.spans:
                if span[2] not in self._checked_labels:
                    self._check_label(span, record, problems)
            yield record

    def relabel(self, spans: List[Tuple[int, int, str]], filtered: bool = True) -> List[Tuple[int, int, str]]:
        """The spans with label_map applied and, if `filtered`, only those with `labels`."""
        renamed = [(s, e, self.label_map.get(label, label)) for s, e, label in spans]
        if self.labels is None or not filtered:
            return renamed
        return [span for span in renamed if span[2] in self.labels]

    def _check_label(self, span: Tuple[int, int, str], record: Record,
                     problems: Optional[List[NerDataError]]) -> None:
        """Warns, once a label, of a label no entity type has: a tag column read wrongly, or
        markup or quoting that got into the annotations."""
        label = span[2]
        self._checked_labels.add(label)
        odd = _ODD_LABEL.search(label)
        if odd is None:
            return
        line = record.lines[span[0]] if record.lines else record.line
        warning = NerDataError(
            f"label {label!r} does not look like an entity type (it holds {odd.group()!r}); check "
            "the annotations, or rename it with label_map (--label-map)", record.path, line,
            severity="warning")
        if problems is not None:
            problems.append(warning)
        else:
            logger.warning("%s (first seen here; the label is kept)", warning)

    def __call__(self, nlp: Language) -> Iterator[Example]:
        return self.examples(nlp)

    def examples(self, nlp: Language,
                 order: Optional[Callable[[Iterable[Record]], Iterable[Record]]] = None) -> Iterator[Example]:
        """The corpus's examples, as calling it gives them.

        Args:
            nlp (Language): the pipeline whose tokenizer and vocab the examples use.
            order: reorders the records before they become examples, such as a shuffle
                buffer (batching.buffer_shuffle): a record holds far less than an Example.
        RETURNS (Iterator[Example]): the examples.
        """
        log = ChangeLog()
        vocab = nlp.vocab
        max_length = self.max_length
        count = 0
        records: Iterable[Record] = self.records(vocab, log)
        for record in order(records) if order is not None else records:
            words = record.words
            if words is not None:  # the hot path: CoNLL
                if max_length and len(words) >= max_length:
                    self._too_long("examples", record, log)
                    continue
                examples: Iterable[Example] = (words_example(vocab, words, record.spans),)
            elif record.doc is not None:
                examples = self._docbin_examples(nlp, record, log)
            else:
                example = self.aligner.char_example(nlp, record, log)
                if max_length and len(example.reference) >= max_length:
                    self._too_long("examples", record, log)
                    continue
                examples = (example,)
            for eg in examples:
                for eg in self.augmenter(nlp, eg) if self.augmenter else (eg,):
                    yield eg
                    count += 1
                    if self.limit and count >= self.limit:
                        self._report(log)
                        return
        self._report(log)

    def _too_long(self, what: str, record: Record, log: ChangeLog) -> None:
        log.add(f"{what} of max_length={self.max_length} tokens or more skipped", record.path, record.line)

    def _report(self, log: ChangeLog) -> None:
        # spaCy reads a corpus once an epoch: say what was changed once, not every epoch.
        if not self._reported:
            log.report(str(self.path))
            self._reported = True

    def _docbin_examples(self, nlp: Language, record: Record, log: ChangeLog) -> Iterator[Example]:
        doc = record.doc
        assert doc is not None
        if self.label_map or self.labels is not None:
            # In place, so the document keeps its other annotations (sentences above all).
            _set_gold(doc, record.spans, [(t.i, t.i + 1) for t in doc if t.ent_iob == _MISSING])
        for reference in self._references(doc, record, log):
            if self.gold_preproc or reference.has_unknown_spaces:
                predicted = same_tokens(nlp.vocab, reference)
            else:  # as spacy.Corpus.v1: the text, tokenized by the pipeline
                predicted = nlp.make_doc(reference.text)
            yield Example(predicted, reference)

    def _references(self, doc: Doc, record: Record, log: ChangeLog) -> Iterator[Doc]:
        """The gold documents a DocBin document gives: itself, or its sentences with
        gold_preproc or when it has max_length tokens or more; none of max_length or more."""
        too_long = bool(self.max_length) and len(doc) >= self.max_length
        if not too_long and not (self.gold_preproc and doc.has_annotation("SENT_START")):
            if len(doc):
                yield doc
            return
        if not doc.has_annotation("SENT_START"):
            self._too_long("examples", record, log)
            return
        for sent in doc.sents:
            if self.max_length and len(sent) >= self.max_length:
                self._too_long("sentences", record, log)
            elif len(sent):
                sent_doc = sent.as_doc()
                sent_doc.has_unknown_spaces = doc.has_unknown_spaces
                yield sent_doc


class Aligner:
    """Turns character spans into token spans over `nlp`'s tokenization, under the policies."""

    def __init__(self, on_misaligned: str = "error", on_overlap: str = "error",
                 problems: Optional[List[NerDataError]] = None):
        """With a `problems` list, every problem is appended to it instead of raised: that
        is how `debug` lists them all. Under the "error" policy the span is then skipped and
        the problem is an error; under another policy, that policy applies and the problem
        is listed as a warning (training would go on)."""
        _check_choice("on_misaligned", on_misaligned, MISALIGNED_POLICIES)
        _check_choice("on_overlap", on_overlap, OVERLAP_POLICIES)
        self.problems = problems
        lenient = problems is not None
        self.on_misaligned = "skip" if lenient and on_misaligned == "error" else on_misaligned
        self.on_overlap = "skip" if lenient and on_overlap == "error" else on_overlap
        self._given = {"on_misaligned": on_misaligned, "on_overlap": on_overlap}

    def _fail(self, error: NerDataError, setting: str) -> None:
        """A problem that `setting` (on_misaligned or on_overlap) decides about."""
        if self.problems is not None:
            if self._given[setting] != "error":
                error.severity = "warning"
            self.problems.append(error)
        elif self._given[setting] == "error":
            raise error

    def char_example(self, nlp: Language, record: Record, log: ChangeLog) -> Example:
        text, path, line = record.text, record.path, record.line
        assert text is not None, "a record of character offsets"
        doc = nlp.make_doc(text)
        spans: List[Tuple[int, int, str, int, int]] = []  # tokens, label, and the chars as given
        missing: List[Tuple[int, int]] = []
        for start, end, label in record.spans:
            given = text[start:end]
            stripped = given.strip()
            if len(stripped) != len(given):
                if not stripped:
                    self._fail(NerDataError(
                        f"span [{start}, {end}] {label} holds only whitespace {given!r}; "
                        f"remove it or set {cli_option('on_misaligned', 'skip')}", path, line), "on_misaligned")
                    log.add("whitespace-only spans skipped", path, line, f"[{start}, {end}]")
                    continue
                new_start = start + len(given) - len(given.lstrip())
                new_end = new_start + len(stripped)
                if self.problems is not None:
                    self.problems.append(NerDataError(
                        f"span [{start}, {end}] {given!r} {label} has whitespace at its edges; "
                        f"it is trimmed to [{new_start}, {new_end}]: fix the offsets", path, line,
                        severity="warning"))
                log.add("spans with leading or trailing whitespace trimmed", path, line,
                        f"[{start}, {end}]->[{new_start}, {new_end}]")
                start, end = new_start, new_end
            span = doc.char_span(start, end)
            if span is None:
                span = self._realign(doc, start, end, label, record, log, missing)
                if span is None:
                    continue
            spans.append((span.start, span.end, label, start, end))
        if len(spans) > 1:
            spans = self._resolve_overlaps(doc, spans, record, log, missing)
        return Example(doc, same_tokens(doc.vocab, doc, [s[:3] for s in spans], missing))

    def _realign(self, doc: Doc, start: int, end: int, label: str, record: Record,
                 log: ChangeLog, missing: List[Tuple[int, int]]) -> Optional[Span]:
        policy = self.on_misaligned
        self._fail(NerDataError(_misaligned_message(doc, start, end, label), record.path, record.line),
                   "on_misaligned")
        covering = doc.char_span(start, end, alignment_mode="expand")
        span = doc.char_span(start, end, alignment_mode=policy) if policy != "skip" else None
        where = f"[{start}, {end}] {doc.text[start:end]!r}"
        if span is not None and len(span):
            log.add(f"misaligned spans changed ({policy})", record.path, record.line,
                    f"{where}->[{span.start_char}, {span.end_char}] {span.text!r}")
            return span
        log.add("misaligned spans skipped, their tokens left unannotated", record.path, record.line, where)
        if covering is not None:
            missing.append((covering.start, covering.end))
        return None

    def _resolve_overlaps(self, doc: Doc, spans: List[Tuple[int, int, str, int, int]],
                          record: Record, log: ChangeLog,
                          missing: List[Tuple[int, int]]) -> List[Tuple[int, int, str, int, int]]:
        spans = sorted(set(spans), key=lambda s: (s[0], -s[1]))
        clusters: List[List[Tuple[int, int, str, int, int]]] = []
        cluster_end = -1
        for span in spans:
            if span[0] < cluster_end:
                clusters[-1].append(span)
            else:
                clusters.append([span])
            cluster_end = max(cluster_end, span[1]) if span[0] < cluster_end else span[1]
        if all(len(c) == 1 for c in clusters):
            return spans
        kept: List[Tuple[int, int, str, int, int]] = []
        for cluster in clusters:
            if len(cluster) == 1:
                kept.extend(cluster)
                continue
            first, second = cluster[0], cluster[1]
            where = f"{_describe(doc, first)} and {_describe(doc, second)}"
            self._fail(NerDataError(
                f"spans {where} overlap; keep one, or set {cli_option('on_overlap', 'longest')} "
                f"or {cli_option('on_overlap', 'skip')}",
                record.path, record.line), "on_overlap")
            if self.on_overlap == "longest":
                objects = [Span(doc, s[0], s[1], s[2]) for s in cluster]
                best = {(s.start, s.end, s.label_) for s in filter_spans(objects)}
                kept.extend(s for s in cluster if (s[0], s[1], s[2]) in best)
                log.add("overlapping spans dropped (longest kept)", record.path, record.line, where)
            else:
                missing.append((cluster[0][0], max(s[1] for s in cluster)))
                log.add("overlapping spans skipped, their tokens left unannotated",
                        record.path, record.line, where)
        return kept


def same_tokens(vocab: Vocab, doc: Doc, ents: Optional[Iterable[Tuple[int, int, str]]] = None,
                missing: Iterable[Tuple[int, int]] = ()) -> Doc:
    """A new Doc with `doc`'s tokens, never re-tokenized: unannotated, to predict on, or
    with `ents`, a gold Doc over the same tokens.

    Args:
        vocab (Vocab): the vocab of the new Doc.
        doc (Doc): the tokens, their spaces and whether those are known (has_unknown_spaces).
        ents (Optional[Iterable[Tuple[int, int, str]]]): gold entities as non-overlapping
            (start token, end token, label); given, the other tokens are O.
        missing (Iterable[Tuple[int, int]]): with `ents`, token ranges (start, end) left
            unannotated instead of O (an entity overrides them).
    RETURNS (Doc): the new Doc.
    """
    new = Doc(vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
    new.has_unknown_spaces = doc.has_unknown_spaces
    if ents is not None:
        _set_gold(new, ents, missing)
    return new


def words_example(vocab: Vocab, words: List[str], spans: List[Tuple[int, int, str]]) -> Example:
    """An Example over the given words, such as a CoNLL sentence: never re-tokenized. Their
    spaces are unknown (one space between words is assumed, for the text), and the gold Doc
    says so, so that a DocBin of it keeps these tokens in spacy.Corpus.v1 and `spacy evaluate`.
    """
    spaces = [True] * len(words)
    if spaces:
        spaces[-1] = False
    reference = Doc(vocab, words=words, spaces=spaces)
    _set_gold(reference, spans, ())
    reference.has_unknown_spaces = True
    return Example(Doc(vocab, words=words, spaces=spaces), reference)


def _set_gold(doc: Doc, spans: Iterable[Tuple[int, int, str]], missing: Iterable[Tuple[int, int]]) -> None:
    """Sets `doc`'s entities: `spans`, tokens in `missing` unannotated, the rest O."""
    # Set as an array, not Doc(ents=tags) or set_ents: building and parsing IOB strings or
    # Spans costs more than the rest of the example; this is the reader's hot path.
    strings = doc.vocab.strings
    ents = numpy.zeros((len(doc), 2), dtype="uint64")
    ents[:, 0] = _OUTSIDE
    for start, end in missing:
        ents[start:end, 0] = _MISSING
    for start, end, label in spans:
        ents[start, 0] = _BEGIN
        ents[start + 1:end, 0] = _INSIDE
        ents[start:end, 1] = strings.add(label)
    doc.from_array(_ENT_ATTRS, cast(Ints2d, ents))


def _describe(doc: Doc, span: Tuple[int, int, str, int, int]) -> str:
    start, end = span[3], span[4]
    return f"[{start}, {end}] {doc.text[start:end]!r} {span[2]}"


def _token_at(doc: Doc, char: int) -> Optional[Span]:
    for token in doc:
        if token.idx <= char < token.idx + len(token):
            return doc[token.i: token.i + 1]
    return None


def _misaligned_message(doc: Doc, start: int, end: int, label: str) -> str:
    """Names the span, its text in context, the token(s) it cuts and the fix."""
    text = doc.text
    parts = []
    first = _token_at(doc, start)
    if first is not None and first.start_char != start:
        parts.append(f"starts inside token {first.text!r} [{first.start_char}, {first.end_char}]")
    last = _token_at(doc, end - 1)
    if last is not None and last.end_char != end:
        parts.append(f"ends inside token {last.text!r} [{last.start_char}, {last.end_char}]")
    if not parts:
        parts.append("does not start and end on token boundaries")
    context = (
        text[max(0, start - _CONTEXT): start] + "[" + text[start:end] + "]" + text[end: end + _CONTEXT]
    )
    return (
        f"span [{start}, {end}] {text[start:end]!r} {label} {' and '.join(parts)} "
        f"(in context: {context!r}); fix the offsets, or set {cli_option('on_misaligned', 'expand')}, "
        f"{cli_option('on_misaligned', 'contract')} or {cli_option('on_misaligned', 'skip')}"
    )


TrainingData = Union[str, Path, Callable[[Language], Iterable[Example]], Iterable[Any]]


def to_examples(nlp: Language, data: TrainingData) -> Iterable[Example]:
    """Examples from any of the forms the Python API takes: a path (read with NerCorpus), a
    corpus callable such as NerCorpus.v1 returns, Examples, or seed tuples
    (text, {"entities": [(start, end, label)]}), aligned with `nlp`'s tokenizer."""
    if isinstance(data, (str, Path)):
        return NerCorpus(data)(nlp)
    if callable(data):
        return data(nlp)
    return (_seed_example(nlp, item, i) for i, item in enumerate(data, 1))


def _seed_example(nlp: Language, item: Any, number: int) -> Example:
    if isinstance(item, Example):
        return item
    record = parse_record(list(item) if isinstance(item, tuple) else item, None, "<data>", number)
    if record is None:
        raise NerDataError('a record with "answer": "reject" or "ignore"; leave it out', "<data>", number)
    return Aligner().char_example(nlp, record, ChangeLog())
