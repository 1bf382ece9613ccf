"""Fine-tuning without forgetting: what the pipeline's `ner` knew is rehearsed while it learns new labels."""
import random
from array import array
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import (AbstractSet, Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple, Union,
                    overload)

import numpy
import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import Model, Optimizer, set_dropout_rate

from .errors import NerDataError, logger
from .pipeline import component, has_weights, listened_by, ner_labels
from .readers import same_tokens

BATCH_SIZE = 256
TEXT_SUFFIXES = (".txt", ".text", ".jsonl")  # what a directory of raw texts is searched for
# Chosen with bench/bench_forgetting.py (README, "Fine-tuning without forgetting").
DEFAULT_RATIO = 0.0  # silver examples per training example, every epoch
DEFAULT_DISTILL_RATIO = 1.0  # raw texts distilled per training example, with every batch
Ents = List[Tuple[int, int, str]]
RawData = Union[str, Path, Sequence[str]]


def read_texts(path: Union[str, Path]) -> Iterator[str]:
    """Raw texts: plain text one per line, or JSONL records with a "text" (a .jsonl file, or
    lines that start with "{"). Blank lines are skipped."""
    for _, _, _, text in _read_lines(_text_files(Path(path))):
        yield text


def _text_files(path: Path) -> List[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
    if not path.exists():
        raise NerDataError("no such file; check the path", path)
    return [path]


def _read_lines(files: Sequence[Path]) -> Iterator[Tuple[int, int, int, str]]:
    """(file index, byte offset, line number, text) of every text in the files."""
    for number, file in enumerate(files):
        with file.open("rb") as lines:
            offset = 0
            for lineno, raw in enumerate(lines, 1):
                text = _parse_line(raw, file, lineno)
                if text is not None:
                    yield number, offset, lineno, text
                offset += len(raw)


def _parse_line(raw: bytes, file: Path, lineno: int) -> Optional[str]:
    try:
        line = raw.decode("utf8").strip()
    except UnicodeDecodeError:
        raise NerDataError("not valid UTF-8; re-save the file as UTF-8", file, lineno) from None
    if not line:
        return None
    if file.suffix == ".jsonl" or line.startswith("{"):
        try:
            record = srsly.json_loads(line)
        except ValueError as err:
            raise NerDataError(f"invalid JSON ({err})", file, lineno) from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise NerDataError('expected a record with a "text" string', file, lineno)
        return record["text"]
    return line


class RawTexts(Sequence[str]):
    """Raw texts by number, read lazily: a path is read once to check every line and note
    where each text starts (two numbers a text); a text is read again when asked for.

    Args:
        source (RawData): a path read_texts reads, or the texts themselves.
    """

    def __init__(self, source: RawData):
        self._texts: Optional[Sequence[str]] = None
        self._files: List[Path] = []
        self._file = array("l")
        self._offset = array("q")
        if isinstance(source, (str, Path)):
            self._files = _text_files(Path(source))
            for number, offset, _, _ in _read_lines(self._files):
                self._file.append(number)
                self._offset.append(offset)
        else:
            self._texts = source

    def __len__(self) -> int:
        return len(self._texts) if self._texts is not None else len(self._offset)

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> List[str]: ...

    def __getitem__(self, i: Union[int, slice]) -> Union[str, List[str]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if self._texts is not None:
            return self._texts[i]
        file = self._files[self._file[i]]
        with file.open("rb") as lines:
            lines.seek(self._offset[i])
            text = _parse_line(lines.readline(), file, 0)
        assert text is not None, f"{file} changed while it was read"
        return text


class Rehearsal:
    """What the original pipeline knows of the labels the new data lacks, and how it is taught again.

    The original's predictions come from its `ner` as it was when `nlp.resume_training()` copied
    it (spaCy's rehearsal model) when there is that copy, so that the pipeline in training can
    be its own original; otherwise from the pipeline as it is now.

    Args:
        original (Language): the pipeline before fine-tuning; only used to predict.
        new_labels (Iterable[str]): the labels the new training data is annotated with.
    """

    def __init__(self, original: Language, new_labels: Iterable[str]):
        self.original = original
        self.new_labels = set(new_labels)
        knows = "ner" in original.pipe_names and has_weights(component(original, "ner"))
        self.old_labels = ner_labels(original) - self.new_labels if knows else set()

    def predict(self, docs: Iterable[Doc]) -> Iterator[Ents]:
        """The original's old-label entities in each doc (docs over the same tokens are
        predicted on: `docs` themselves are not changed)."""
        docs = iter(docs)
        while True:
            batch = [same_tokens(self.original.vocab, doc) for doc in islice(docs, BATCH_SIZE)]
            if not batch:
                return
            with self._as_original():
                predicted = list(self.original.pipe(batch, batch_size=BATCH_SIZE))
            for doc in predicted:
                yield [(e.start, e.end, e.label_) for e in doc.ents if e.label_ in self.old_labels]

    @contextmanager
    def _as_original(self) -> Iterator[None]:
        # Only ner and the layer it listens to run; during training, ner runs with the copy.
        ner = component(self.original, "ner")
        needed = [name for name in (listened_by(self.original, "ner"), "ner") if name is not None]
        teacher = _teacher(ner)
        with self.original.select_pipes(enable=needed):
            if teacher is None:
                yield
                return
            model, ner.model = ner.model, teacher
            try:
                yield
            finally:
                ner.model = model

    def fill(self, examples: Iterable[Example]) -> Iterator[Example]:
        """The examples with the original's old-label predictions added to the gold wherever
        they overlap no gold span, so old entities in new texts are not taught as 'O'. The
        predictions are made as the examples are read, a batch at a time: nothing is kept."""
        examples = iter(examples)
        while True:
            batch = list(islice(examples, BATCH_SIZE))
            if not batch:
                return
            for eg, predicted in zip(batch, self.predict(eg.reference for eg in batch)):
                yield _merge(eg, predicted)

    def silver(self, texts: Iterable[str], unsure: AbstractSet[str] = frozenset()) -> List[Example]:
        """Silver examples: the original's old-label predictions on raw texts.

        Args:
            texts (Iterable[str]): raw texts.
            unsure (AbstractSet[str]): lower-cased words left unannotated outside the predicted
                entities instead of "O": the original cannot tell whether they belong to a
                new label (see entity_words).
        RETURNS (List[Example]): one example a text.
        """
        docs = [self.original.make_doc(text) for text in texts]
        out = []
        for doc, ents in zip(docs, self.predict(docs)):
            inside = {i for start, end, _ in ents for i in range(start, end)}
            missing = [(t.i, t.i + 1) for t in doc if t.lower_ in unsure and t.i not in inside]
            out.append(Example(doc, same_tokens(doc.vocab, doc, ents, missing)))
        return out

    def with_student(self, silver: Sequence[Example], student: Language) -> List[Example]:
        """The silver examples with the tokens that `student`, the pipeline in training, now
        predicts as new-label entities left unannotated: the new labels' entities in raw
        texts that no training word flags (see entity_words) are not taught as "O" either.

        Args:
            silver (Sequence[Example]): examples made by `silver`.
            student (Language): the pipeline in training; its `ner` knows the new labels.
        RETURNS (List[Example]): the examples; unchanged where the student finds nothing new.
        """
        docs = student.pipe((same_tokens(student.vocab, eg.reference) for eg in silver), batch_size=BATCH_SIZE)
        out = []
        for eg, doc in zip(silver, docs):
            reference = eg.reference
            new = {i for e in doc.ents if e.label_ in self.new_labels for i in range(e.start, e.end)}
            new -= {t.i for t in reference if t.ent_iob != 2}  # an old entity, or unannotated already
            if not new:
                out.append(eg)
                continue
            missing = sorted(new | {t.i for t in reference if t.ent_iob == 0})
            ents = [(e.start, e.end, e.label_) for e in reference.ents]
            out.append(Example(eg.predicted, same_tokens(reference.vocab, reference, ents,
                                                         [(i, i + 1) for i in missing])))
        return out


def _merge(eg: Example, predicted: Ents) -> Example:
    reference = eg.reference
    taken = [token.ent_iob != 2 for token in reference]  # in a gold entity, or unannotated
    added = [(start, end, label) for start, end, label in predicted if not any(taken[start:end])]
    if not added:
        return eg
    gold = [(e.start, e.end, e.label_) for e in reference.ents]
    missing = [(t.i, t.i + 1) for t in reference if t.ent_iob == 0]
    return Example(eg.predicted, same_tokens(reference.vocab, reference, gold + added, missing))


def _teacher(ner: Any) -> Optional[Model]:
    """The copy of ner's model that nlp.resume_training() made, if there is one."""
    teacher = getattr(ner, "_rehearsal_model", None)
    return teacher if isinstance(teacher, Model) else None


def distill(nlp: Language, texts: Iterable[Union[str, Doc]], *, sgd: Optional[Union[Optimizer, bool]] = None,
            drop: float = 0.0, losses: Optional[Dict[str, float]] = None) -> Dict[str, float]:
    """One distillation step: on raw texts, `nlp`'s `ner` is pulled toward what it predicted
    when `nlp.resume_training()` copied it (spaCy's rehearsal model, as in Language.rehearse):
    at every step of the parse, the student's distribution over the moves the original knows
    is taught the original's (cross-entropy on their softmax).

    Unlike EntityRecognizer.rehearse (a squared error on the raw scores of every move), the
    moves of the labels the original never learned are left out: it scores them at its
    minimum, which would teach the new labels' entities in these texts as "not an entity".

    Args:
        nlp (Language): the pipeline in training, after `nlp.resume_training()`.
        texts (Iterable[Union[str, Doc]]): raw texts, or docs to predict on.
        sgd: the optimizer; None or False only adds to the gradients, so that the step can
            share one optimizer update with `nlp.update(..., sgd=False)`.
        drop (float): dropout of the student.
        losses (Optional[Dict[str, float]]): the loss is added under "ner_distill".
    RETURNS (Dict[str, float]): the losses.
    """
    losses = {} if losses is None else losses
    losses.setdefault("ner_distill", 0.0)
    ner = component(nlp, "ner")
    teacher = _teacher(ner)
    if teacher is None:
        raise ValueError("distillation needs the original ner's copy: call nlp.resume_training() first")
    docs = [doc for doc in (nlp.make_doc(t) if isinstance(t, str) else t for t in texts) if len(doc)]
    if docs:
        losses["ner_distill"] += _distill(ner, teacher, docs, drop)
    if sgd not in (None, False):
        ner.finish_update(sgd)
    return losses


def _distill(ner: Any, teacher: Model, docs: List[Doc], drop: float) -> float:
    """Adds the distillation gradient on `docs` to ner's; returns the loss."""
    states = ner.moves.init_batch(docs)
    ner._resize()
    set_dropout_rate(ner.model, drop)
    tutor = teacher.predict(docs)
    student, backprop_tok2vec = ner.model.begin_update(docs)
    known = tutor._class_mask > 0  # the moves the original learned
    loss = 0.0
    while states:
        p_teacher = _softmax(tutor.predict(states)[:, known])
        guesses, backprop = student.begin_update(states)
        p_student = _softmax(guesses[:, known])
        d_scores = numpy.zeros_like(guesses)
        d_scores[:, known] = (p_student - p_teacher) / guesses.shape[0]
        loss += float((p_teacher * (numpy.log(p_teacher + 1e-9) - numpy.log(p_student + 1e-9))).sum())
        backprop(d_scores)
        states = ner.transition_states(states, guesses)
    backprop_tok2vec(docs)
    student.clear_memory()
    tutor.clear_memory()
    return loss


def _softmax(scores: Any) -> Any:
    exp = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def entity_words(examples: Iterable[Example], labels: Optional[Iterable[str]] = None) -> Set[str]:
    """Lower-cased content words (alphabetic, not stop words) of the gold entities with these
    labels (None: any label). A raw text's silver example leaves them unannotated: marking them
    "O" would teach the new label's entities in raw texts as "not an entity", which costs the
    new label its recall."""
    wanted = None if labels is None else set(labels)
    return {
        token.lower_
        for eg in examples
        for ent in eg.reference.ents
        if wanted is None or ent.label_ in wanted
        for token in ent
        if token.is_alpha and not token.is_stop
    }


def interleave(gold: Iterable[Example], silver: Sequence[Example], ratio: float,
               rng: random.Random) -> Iterator[Example]:
    """The gold examples with `ratio` silver ones after each (on average), drawn at random."""
    owed = 0.0
    for eg in gold:
        yield eg
        owed += ratio
        while silver and owed >= 1:
            yield silver[rng.randrange(len(silver))]
            owed -= 1


class RehearsalPlan:
    """Rehearsal of the labels a pipeline's `ner` knows and the new data lacks, planned before
    the first update; train() and RehearsalCorpus.v1 both use it.

    Made while `original` is still unchanged: it predicts the retention examples here. What it
    predicts later (the old-label gold of streamed examples, silver examples) comes from the
    copy nlp.resume_training() made, or from a separately loaded original, so the pipeline
    being trained may be its own original. Which raw texts are drawn depends on the seed and
    the epoch or step alone, so a run resumed from a checkpoint draws the same ones.

    Args:
        original (Language): the pipeline before training (may be the one then trained).
        labels (Optional[Iterable[str]]): the labels of the new training data; None learns
            them from `examples`.
        examples (Iterable[Example]): the training examples; read once, here, for the new
            labels' words and their number, when silver examples are made or labels is None.
        raw_texts (Optional[RawData]): raw texts to rehearse on: a path read_texts reads, or
            strings; read lazily.
        ratio (float): silver examples per training example, every epoch.
        distill_ratio (float): raw texts distilled per training example, with every batch.
        retention_texts (Optional[Sequence[str]]): texts to measure retention on (such as the
            dev texts); None holds back the last tenth of the raw texts.
        seed (int): seeds which raw texts are drawn.
        active (bool): False only measures retention: nothing is rehearsed.
    """

    def __init__(self, original: Language, labels: Optional[Iterable[str]], examples: Iterable[Example] = (),
                 raw_texts: Optional[RawData] = None, *, ratio: float = DEFAULT_RATIO,
                 distill_ratio: float = DEFAULT_DISTILL_RATIO, retention_texts: Optional[Sequence[str]] = None,
                 seed: int = 0, active: bool = True):
        if ratio < 0 or distill_ratio < 0:
            raise ValueError(f"rehearsal ratios must be 0 or more, not {ratio} and {distill_ratio}")
        self.active = active
        ratio, distill_ratio = (ratio, distill_ratio) if active else (0.0, 0.0)
        self.ratio, self.distill_ratio, self.seed = ratio, distill_ratio, seed
        self.unsure: Set[str] = set()
        self.n_examples = 0
        if ratio or labels is None:
            # One pass: the labels (when not given), the words of their entities, the count.
            counts: Dict[str, int] = {}
            for eg in examples:
                self.n_examples += 1
                for ent in eg.reference.ents:
                    counts[ent.label_] = counts.get(ent.label_, 0) + 1
                self.unsure.update(entity_words([eg]))
            labels = counts if labels is None else labels
        self.rehearsal = Rehearsal(original, labels)
        self.old_labels = sorted(self.rehearsal.old_labels)
        self.raw = RawTexts(raw_texts if raw_texts is not None else [])
        self.texts: Sequence[int] = range(len(self.raw))
        if retention_texts is None and len(self.raw):
            held = max(1, len(self.raw) // 10)
            self.texts = range(len(self.raw) - held)
            retention_texts = self.raw[len(self.raw) - held:]
        self.retention: List[Example] = []
        if self.old_labels and retention_texts:
            self.retention = self.rehearsal.silver(retention_texts)

    @property
    def rehearsed(self) -> List[str]:
        """The old labels rehearsed: none when inactive."""
        return self.old_labels if self.active else []

    def fill(self, examples: Iterable[Example]) -> Iterator[Example]:
        """The examples with the original's old-label predictions in their gold (Rehearsal.fill)."""
        return self.rehearsal.fill(examples) if self.rehearsed else iter(examples)

    def draw(self, n: int, rng: random.Random) -> List[str]:
        """`n` raw texts drawn at random (with replacement), the held-back ones excepted."""
        if not self.texts:
            return []
        return [self.raw[self.texts[rng.randrange(len(self.texts))]] for _ in range(n)]

    def epoch_silver(self, epoch: int, student: Optional[Language] = None) -> List[Example]:
        """Epoch `epoch`'s silver examples (ratio x the training examples): raw texts drawn at
        random and predicted now by the original; from the second epoch, what `student` has
        learned of the new labels is no longer taught as "O" in them (Rehearsal.with_student)."""
        if not self.rehearsed or not self.ratio:
            return []
        rng = random.Random(f"silver {self.seed} {epoch}")
        silver = self.rehearsal.silver(self.draw(int(self.ratio * self.n_examples), rng), self.unsure)
        return self.rehearsal.with_student(silver, student) if epoch and student is not None else silver

    def epoch(self, gold: Iterable[Example], silver: Sequence[Example]) -> Iterator[Example]:
        """The gold examples with the epoch's silver ones spread evenly among them."""
        per_gold = len(silver) / self.n_examples if self.n_examples else 0.0
        rest = iter(silver)
        owed = 0.0
        for eg in gold:
            yield eg
            owed += per_gold
            while owed >= 1:
                owed -= 1
                yield from islice(rest, 1)
        yield from rest

    def distill(self, nlp: Language, step: int, n_examples: int, *, sgd: Optional[Union[Optimizer, bool]],
                losses: Dict[str, float], drop: float = 0.0) -> Dict[str, float]:
        """The distillation that goes with training step `step` on a batch of `n_examples`:
        distill_ratio x n_examples raw texts (rounded at random), drawn by the seed and the
        step alone (see `distill`; call it after nlp.update(batch, sgd=False), with the
        optimizer, so that both share one update)."""
        rng = random.Random(f"distill {self.seed} {step}")
        wanted = self.distill_ratio * n_examples
        texts = self.draw(int(wanted) + (rng.random() < wanted - int(wanted)), rng) if self.distills else []
        return distill(nlp, texts, sgd=sgd, drop=drop, losses=losses)

    @property
    def distills(self) -> bool:
        """Whether training steps distill (see `distill`)."""
        return bool(self.rehearsed and self.distill_ratio and self.texts)


def plan_rehearsal(nlp: Language, labels: Iterable[str], examples: Iterable[Example], rehearse: Optional[bool],
                   raw_texts: Optional[RawData] = None, **settings: Any) -> Optional[RehearsalPlan]:
    """The rehearsal train() does. None when the pipeline's `ner` knows no label the data
    lacks (nothing to rehearse or to measure retention of); otherwise a plan, which rehearses
    unless `rehearse` is False (None, the default, rehearses whenever there is something to
    keep; a plan that does not rehearse still measures retention).

    Args:
        nlp (Language): the pipeline about to be trained, still unchanged.
        labels (Iterable[str]): the labels of the training data.
        examples (Iterable[Example]): the training examples (read once, only for silver examples).
        rehearse (Optional[bool]): True, False, or None for "whenever there is something to keep".
        raw_texts (Optional[RawData]): raw texts to rehearse on.
        **settings: RehearsalPlan's ratio, distill_ratio, retention_texts, seed.
    RETURNS (Optional[RehearsalPlan]): the plan, or None.
    """
    labels = list(labels)
    forgotten = sorted(Rehearsal(nlp, labels).old_labels)
    if not forgotten:
        if rehearse:
            logger.warning("nothing to rehearse: the data has every label the pipeline's ner knows")
        return None
    if rehearse is None:
        logger.warning("rehearsing %s, which the pipeline's ner knows and the data lacks, so that it "
                       "keeps them (rehearse=False / --no-rehearse turns this off)", ", ".join(forgotten))
    return RehearsalPlan(nlp, labels, examples, raw_texts, active=rehearse is not False, **settings)


def rehearsal_corpus_v1(
    corpus: Callable[[Language], Iterable[Example]],
    source: str,
    raw_path: Optional[str] = None,
    ratio: float = 1.0,
    seed: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Registered as spacy-ner-trainer.RehearsalCorpus.v1: wraps a training corpus so that a
    sourced `ner` keeps its old labels while it learns new ones. A corpus cannot reach the
    training step, so it rehearses with silver examples, not distillation.

    Args:
        corpus (Callable[[Language], Iterable[Example]]): the training corpus, e.g. NerCorpus.v1.
        source (str): the original pipeline, a package name or path (the one `ner` is sourced from).
        raw_path (Optional[str]): raw texts (plain text lines or JSONL with "text") whose
            original predictions are mixed in as silver examples.
        ratio (float): silver examples per gold example in every epoch.
        seed (int): seed of the silver sample.
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    plans: List[RehearsalPlan] = []
    epochs = [0]

    def rehearsal(nlp: Language) -> Iterator[Example]:
        if not plans:
            # One pass learns which labels the new data carries (the rest are rehearsed) and
            # the words of their entities.
            plans.append(RehearsalPlan(spacy.load(source), None, corpus(nlp), raw_path, ratio=ratio,
                                       distill_ratio=0.0, retention_texts=[], seed=seed))
            logger.info("rehearsing %s from %s", plans[0].old_labels, source)
        plan = plans[0]
        silver = plan.epoch_silver(epochs[0])
        epochs[0] += 1
        yield from plan.epoch(plan.fill(corpus(nlp)), silver)

    return rehearsal
