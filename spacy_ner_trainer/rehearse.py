"""Fine-tuning without forgetting: the original pipeline's own predictions are rehearsed."""
import random
from pathlib import Path
from typing import AbstractSet, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Union

import spacy
import srsly
from spacy.language import Language
from spacy.tokens import Span
from spacy.training import Example

from .errors import NerDataError, logger
from .labels import collect_labels
from .pipeline import ner_labels
from .readers import same_tokens

BATCH_SIZE = 256
TEXT_SUFFIXES = (".txt", ".text", ".jsonl")  # what a directory of raw texts is searched for


def read_texts(path: Union[str, Path]) -> Iterator[str]:
    """Raw texts: plain text one per line, or JSONL records with a "text" (a .jsonl file, or
    lines that start with "{"). Blank lines are skipped."""
    path = Path(path)
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES) \
        if path.is_dir() else [path]
    for file in files:
        if not file.exists():
            raise NerDataError("no such file; check the path", file)
        with file.open("rb") as lines:
            for lineno, raw in enumerate(lines, 1):
                try:
                    line = raw.decode("utf8").strip()
                except UnicodeDecodeError:
                    raise NerDataError("not valid UTF-8; re-save the file as UTF-8", file, lineno) from None
                if not line:
                    continue
                if file.suffix == ".jsonl" or line.startswith("{"):
                    try:
                        record = srsly.json_loads(line)
                    except ValueError as err:
                        raise NerDataError(f"invalid JSON ({err})", file, lineno) from None
                    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                        raise NerDataError('expected a record with a "text" string', file, lineno)
                    line = record["text"]
                yield line


class Rehearsal:
    """What the original pipeline knows, kept to be taught again while `ner` learns new labels.

    Args:
        original (Language): the pipeline before fine-tuning; only used to predict.
        new_labels (Iterable[str]): the labels the new training data is annotated with.
    """

    def __init__(self, original: Language, new_labels: Iterable[str]):
        self.original = original
        self.new_labels = set(new_labels)
        self.old_labels = ner_labels(original) - self.new_labels
        # words -> the original's old-label entities: each text is predicted once, not every epoch
        self._cache: Dict[tuple, List[tuple]] = {}

    def fill(self, examples: Iterable[Example]) -> Iterator[Example]:
        """The examples with the original's old-label predictions added to the gold wherever
        they overlap no gold span, so old entities in new texts are not taught as 'O'."""
        examples = iter(examples)
        while True:
            batch = [eg for _, eg in zip(range(BATCH_SIZE), examples)]
            if not batch:
                return
            keys = [tuple(t.text for t in eg.reference) for eg in batch]
            todo = [(key, eg) for key, eg in zip(keys, batch) if key not in self._cache]
            if todo:
                docs = self.original.pipe([same_tokens(self.original.vocab, eg.reference) for _, eg in todo])
                for (key, _), doc in zip(todo, docs):
                    self._cache[key] = [(e.start, e.end, e.label_) for e in doc.ents if e.label_ in self.old_labels]
            for key, eg in zip(keys, batch):
                yield self._merge(eg, self._cache[key])

    def _merge(self, eg: Example, predicted: List[tuple]) -> Example:
        reference = eg.reference
        taken = [False] * len(reference)
        for ent in reference.ents:
            taken[ent.start: ent.end] = [True] * len(ent)
        for token in reference:
            if token.ent_iob == 0:  # unannotated: not ours to fill either
                taken[token.i] = True
        added = [(start, end, label) for start, end, label in predicted if not any(taken[start:end])]
        if not added:
            return eg
        merged = same_tokens(reference.vocab, reference)
        gold = [(e.start, e.end, e.label_) for e in reference.ents]
        merged.set_ents([Span(merged, start, end, label) for start, end, label in [*gold, *added]],
                        missing=[merged[t.i: t.i + 1] for t in reference if t.ent_iob == 0],
                        default="outside")
        return Example(eg.predicted, merged)

    def silver(self, texts: Iterable[str], unsure: AbstractSet[str] = frozenset()) -> List[Example]:
        """Silver examples: the original's old-label predictions on raw texts.

        Args:
            texts (Iterable[str]): raw texts.
            unsure (Set[str]): lower-cased words left unannotated outside the predicted
                entities instead of "O": the original cannot tell whether they belong to a
                new label (see entity_words).
        RETURNS (List[Example]): one example a text.
        """
        out = []
        for doc in self.original.pipe(texts, batch_size=BATCH_SIZE):
            silver = same_tokens(self.original.vocab, doc)
            ents = [Span(silver, e.start, e.end, e.label_) for e in doc.ents if e.label_ in self.old_labels]
            inside = {i for ent in ents for i in range(ent.start, ent.end)}
            missing = [silver[t.i: t.i + 1] for t in silver if t.lower_ in unsure and t.i not in inside]
            silver.set_ents(ents, missing=missing, default="outside")
            out.append(Example(same_tokens(self.original.vocab, doc), silver))
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
            updated = same_tokens(reference.vocab, reference)
            missing = sorted(new | {t.i for t in reference if t.ent_iob == 0})
            updated.set_ents([Span(updated, e.start, e.end, e.label_) for e in reference.ents],
                             missing=[updated[i: i + 1] for i in missing], default="outside")
            out.append(Example(eg.predicted, updated))
        return out


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


def rehearsal_corpus_v1(
    corpus: Callable[[Language], Iterable[Example]],
    source: str,
    raw_path: Optional[str] = None,
    ratio: float = 1.0,
    seed: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Registered as spacy-ner-trainer.RehearsalCorpus.v1: wraps a training corpus so that a
    sourced `ner` keeps its old labels while it learns new ones.

    Args:
        corpus (Callable[[Language], Iterable[Example]]): the training corpus, e.g. NerCorpus.v1.
        source (str): the original pipeline, a package name or path (the one `ner` is sourced from).
        raw_path (Optional[str]): raw texts (plain text lines or JSONL with "text") whose
            original predictions are mixed in as silver examples.
        ratio (float): silver examples per gold example in every epoch.
        seed (int): seed of the silver sample.
    RETURNS (Callable[[Language], Iterator[Example]]): the corpus.
    """
    state: Dict[str, object] = {}
    rng = random.Random(seed)

    def rehearsal(nlp: Language) -> Iterator[Example]:
        if not state:
            original = spacy.load(source)
            texts = list(read_texts(raw_path)) if raw_path else []
            # One pass learns which labels the new data carries (the rest are rehearsed) and
            # the words of its entities.
            unsure: Set[str] = set()

            def noting_words(examples: Iterable[Example]) -> Iterator[Example]:
                for eg in examples:
                    unsure.update(entity_words([eg]))
                    yield eg

            labels = collect_labels(noting_words(corpus(nlp)))
            state["rehearsal"] = Rehearsal(original, labels)
            state["silver"] = state["rehearsal"].silver(texts, unsure)  # type: ignore[attr-defined]
            logger.info("rehearsing %s from %s", sorted(state["rehearsal"].old_labels), source)  # type: ignore[attr-defined]
        rehearse: Rehearsal = state["rehearsal"]  # type: ignore[assignment]
        yield from interleave(rehearse.fill(corpus(nlp)), state["silver"], ratio, rng)  # type: ignore[arg-type]

    return rehearsal
