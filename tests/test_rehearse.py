"""Rehearsal: fine-tuning a trained `ner` on new labels without forgetting the old ones.

A tiny base pipeline (module-scoped) learns one distinctive old label, FRUIT (apple, banana,
cherry, ... in templated sentences). New data annotates only ANIMAL, in texts full of fruits
left unannotated: fine-tuned naively, the model is taught that fruits are not entities;
rehearsed, the base model's own FRUIT predictions fill in the gold first.
"""
import json
import math
import os
import random
import re
import signal
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Set, Tuple

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import SGD, Config

from spacy_ner_trainer import NerCorpus, NerDataError, TrainingInterrupted, TrainResult, train, verify
from spacy_ner_trainer.loop import FINE_TUNE_LEARN_RATE
from spacy_ner_trainer.readers import to_examples
from spacy_ner_trainer.rehearse import (RawTexts, Rehearsal, RehearsalPlan, distill, entity_words, interleave,
                                        plan_rehearsal, read_texts)
from spacy_ner_trainer.evaluate import evaluate

from pipelines import run_cli

OLD, NEW = "FRUIT", "ANIMAL"
FRUITS = ["apple", "banana", "cherry", "mango", "lemon", "grape", "peach", "plum"]
ANIMALS = ["dog", "cat", "horse", "rabbit", "goat", "fox", "mouse", "sheep"]
NAMES = ["Anna", "Ben", "Carla", "David", "Emma", "Felix", "Greta", "Hugo"]

# Base data: FRUIT only. "{f}" is a fruit.
BASE_TEMPLATES = [
    "I ate an {f} today .",
    "{n} bought a {f} at the market .",
    "The {f} was sweet and ripe .",
    "She cut the {f} into slices .",
    "We picked a {f} and a {g} from the garden .",
    "{n} prefers {f} juice in the morning .",
    "A fresh {f} costs one euro .",
    "Put the {f} on the table , {n} .",
    "A {a} walked past the {f} stand .",  # animals, not annotated: the base learns they are no fruit
    "{n} fed the {a} before lunch .",
]
# New data: ANIMAL annotated, the fruits in the same texts not. "{a}" is an animal.
NEW_TEMPLATES = [
    "The {a} ate an {f} today .",
    "{n} saw a {a} near the {f} tree .",
    "A {a} stole the {f} from the table .",
    "The {a} and the {f} were in the garden .",
    "{n} gave the {a} a {f} .",
    "My {a} likes {f} more than bread .",
]
# Never trained on, by either model.
HELD_TEXTS = [
    "Greta ate a banana with her horse .",
    "The cherry was sweet , said Hugo .",
    "A goat found a plum near the river .",
    "Felix cut the peach for the dog .",
    "We picked a grape and a lemon yesterday .",
    "The sheep and the apple were in the barn .",
]


def _fill(template: str, rng: random.Random) -> Tuple[str, List[Tuple[int, int, str]]]:
    """The text of a template, with character spans of its fruits (FRUIT) and animals (ANIMAL)."""
    values = {"f": rng.choice(FRUITS), "g": rng.choice(FRUITS), "a": rng.choice(ANIMALS), "n": rng.choice(NAMES)}
    text, spans = "", []
    for part in re.split(r"(\{[fgan]\})", template):
        if re.fullmatch(r"\{[fgan]\}", part):
            key = part[1]
            label = {"f": OLD, "g": OLD, "a": NEW}.get(key)
            if label:
                spans.append((len(text), len(text) + len(values[key]), label))
            text += values[key]
        else:
            text += part
    return text, spans


def make_data(templates: Sequence[str], n: int, keep: Set[str], seed: int) -> List[tuple]:
    """`n` seed tuples from the templates, annotated with the `keep` labels only."""
    rng = random.Random(seed)
    data = []
    for i in range(n):
        text, spans = _fill(templates[i % len(templates)], rng)
        data.append((text, {"entities": [s for s in spans if s[2] in keep]}))
    return data


BASE_DATA = make_data(BASE_TEMPLATES, 64, {OLD}, seed=1)
NEW_DATA = make_data(NEW_TEMPLATES, 36, {NEW}, seed=2)  # only ANIMAL: the fruits are not annotated
NEW_DEV = make_data(NEW_TEMPLATES, 12, {NEW}, seed=3)
NEW_TEXTS = [text for text, _ in NEW_DATA]
FINE_TUNE_EPOCHS = 8


def write_jsonl(path: Path, data: Sequence[tuple]) -> Path:
    path.write_text("".join(json.dumps([text, ann]) + "\n" for text, ann in data), encoding="utf8")
    return path


def label_ents(nlp: Language, texts: Sequence[str], label: str) -> List[List[Tuple[int, int]]]:
    return [[(e.start, e.end) for e in doc.ents if e.label_ == label] for doc in nlp.pipe(texts)]


def agreement(model: Language, base: Language, texts: Sequence[str], label: str = OLD) -> float:
    """F of `model`'s `label` entities against `base`'s on `texts` (1.0: identical)."""
    silver = Rehearsal(base, new_labels={NEW}).silver(texts)
    return evaluate(model, silver).per_label.get(label, {"f": 0.0})["f"]


def rehearsable(base: Language, data: Sequence[tuple]) -> List[Example]:
    """What rehearsal should keep on annotated texts: the base's FRUIT entities that overlap no
    gold span, as gold (a FRUIT the base sees on a gold ANIMAL is the base's error, overruled)."""
    examples = []
    for eg, doc in zip(to_examples(base, data), base.pipe([text for text, _ in data])):
        gold = [(e.start, e.end) for e in eg.reference.ents]
        words, spaces = [t.text for t in doc], [bool(t.whitespace_) for t in doc]
        reference = Doc(base.vocab, words=words, spaces=spaces)
        reference.ents = [Span(reference, e.start, e.end, e.label_) for e in doc.ents
                          if e.label_ == OLD and not any(s < e.end and e.start < t for s, t in gold)]
        examples.append(Example(Doc(base.vocab, words=words, spaces=spaces), reference))
    return examples


def all_ents(nlp: Language, texts: Sequence[str]) -> List[List[Tuple[int, int, str]]]:
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


@pytest.fixture(scope="module")
def base_path(tmp_path_factory) -> Path:
    """The base pipeline: a blank "en" whose ner learned FRUIT, saved."""
    nlp = spacy.blank("en")
    train(nlp, BASE_DATA, n_iter=12, seed=0)
    path = tmp_path_factory.mktemp("rehearse-base") / "base"
    nlp.to_disk(path)
    return path


@pytest.fixture(scope="module")
def base(base_path) -> Language:
    """The base pipeline, loaded; tests must not change it."""
    nlp = spacy.load(base_path)
    assert nlp.get_pipe("ner").labels == (OLD,)
    # A base that does not know its fruits would make every retention test meaningless.
    assert agreement(nlp, nlp, HELD_TEXTS) == 1.0
    predicted = label_ents(nlp, HELD_TEXTS + NEW_TEXTS, OLD)
    assert sum(map(len, predicted)) >= len(HELD_TEXTS + NEW_TEXTS), "the base finds too few fruits"
    return nlp


def fine_tune(base_path: Path, **kwargs) -> Tuple[Language, TrainResult]:
    nlp = spacy.load(base_path)
    kwargs.setdefault("n_iter", FINE_TUNE_EPOCHS)
    kwargs.setdefault("seed", 0)
    result = train(nlp, kwargs.pop("data", NEW_DATA), **kwargs)
    return nlp, result


@pytest.fixture(scope="module")
def naive(base_path) -> Tuple[Language, TrainResult]:
    return fine_tune(base_path, rehearse=False, dev_data=NEW_DEV)


@pytest.fixture(scope="module")
def rehearsed(base_path) -> Tuple[Language, TrainResult]:
    return fine_tune(base_path, rehearse=True, dev_data=NEW_DEV)


def record_updates(nlp: Language, events: Optional[list] = None) -> List[List[Example]]:
    """Wrap `nlp.update` (on this instance only) to keep every batch it is given."""
    batches: List[List[Example]] = []
    update = nlp.update

    def recording(examples, *args, **kwargs):
        examples = list(examples)
        batches.append(examples)
        if events is not None:
            events.append("update")
        return update(examples, *args, **kwargs)

    nlp.update = recording  # type: ignore[method-assign]
    return batches


# 1. Partially annotated training data: Rehearsal.fill


def ruler_pipeline(patterns: List[Dict]) -> Language:
    """A stand-in for a trained pipeline: an entity ruler named "ner" predicts exactly `patterns`."""
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", name="ner")
    ruler.add_patterns(patterns)
    return nlp


def crafted_example(vocab, words: List[str], tags: List[Optional[str]]) -> Example:
    return Example(Doc(vocab, words=words), Doc(vocab, words=words, ents=tags))


WORDS = ["A", "hot", "dog", "and", "a", "green", "apple", "near", "a", "cat", "and", "a", "cherry", "."]
#        0    1      2      3      4    5        6        7       8    9      10     11   12        13
GOLD = ["O", "O", "B-ANIMAL", "O", "O", "O", "O", "O", "O", "O", "O", "O", None, "O"]  # cherry: unannotated
PATTERNS = [
    {"label": "FRUIT", "pattern": "hot dog"},  # overlaps the gold "dog": not added
    {"label": "COLOR", "pattern": "green"},  # another old label, on an O token: added
    {"label": "FRUIT", "pattern": "apple"},  # on O tokens: added
    {"label": "ANIMAL", "pattern": "cat"},  # a label of the new data: never added
    {"label": "FRUIT", "pattern": "cherry"},  # on unannotated tokens: not added, left unannotated
]


def test_fill_adds_only_old_label_predictions_that_overlap_no_gold_span():
    original = ruler_pipeline(PATTERNS)
    rehearsal = Rehearsal(original, new_labels={NEW})
    assert rehearsal.old_labels == {"FRUIT", "COLOR"}
    eg = crafted_example(original.vocab, WORDS, GOLD)
    before = [(t.ent_iob_, t.ent_type_) for t in eg.reference]
    (filled,) = list(rehearsal.fill([eg]))
    ref = filled.reference
    assert [t.text for t in ref] == WORDS
    assert {(e.start, e.end, e.label_) for e in ref.ents} == {(2, 3, NEW), (5, 6, "COLOR"), (6, 7, "FRUIT")}
    assert ref[12].ent_iob == 0, "an unannotated token must stay unannotated"
    assert [t.i for t in ref if t.ent_iob == 0] == [12]
    assert ref[9].ent_iob_ == "O" and ref[1].ent_iob_ == "O"
    # The input example is not changed; the predicted side is kept.
    assert [(t.ent_iob_, t.ent_type_) for t in eg.reference] == before
    assert filled.predicted is eg.predicted


def test_fill_partial_overlap_with_a_gold_span_is_not_added():
    original = ruler_pipeline([{"label": "FRUIT", "pattern": "green apple"}])
    words = ["A", "green", "apple", "pie", "."]
    eg = crafted_example(original.vocab, words, ["O", "O", "B-ANIMAL", "I-ANIMAL", "O"])
    (filled,) = Rehearsal(original, new_labels={NEW}).fill([eg])
    assert [(e.start, e.end, e.label_) for e in filled.reference.ents] == [(2, 4, NEW)]


def test_fill_without_predictions_returns_the_example_unchanged():
    original = ruler_pipeline([{"label": "FRUIT", "pattern": "apple"}])
    eg = crafted_example(original.vocab, ["The", "dog", "."], ["O", "B-ANIMAL", "O"])
    assert list(Rehearsal(original, new_labels={NEW}).fill([eg])) == [eg]


def test_fill_keeps_order_and_handles_more_than_one_batch():
    original = ruler_pipeline([{"label": "FRUIT", "pattern": "apple"}])
    examples = [
        crafted_example(original.vocab, ["The", f"dog{i}", "ate", "an", "apple"], ["O", "B-ANIMAL", "O", "O", "O"])
        for i in range(300)  # more than one prediction batch
    ]
    filled = list(Rehearsal(original, new_labels={NEW}).fill(examples))
    assert [eg.reference[1].text for eg in filled] == [f"dog{i}" for i in range(300)]
    assert all([(e.start, e.label_) for e in eg.reference.ents] == [(1, NEW), (4, "FRUIT")] for eg in filled)


def test_silver_has_the_original_old_label_predictions_only():
    original = ruler_pipeline(PATTERNS)
    (silver,) = Rehearsal(original, new_labels={NEW}).silver(["A green apple and a cat ."])
    assert [(e.text, e.label_) for e in silver.reference.ents] == [("green", "COLOR"), ("apple", "FRUIT")]
    assert not silver.predicted.ents


def test_silver_leaves_the_new_labels_words_unannotated_not_o():
    # The original cannot see ANIMAL: a "cat" in a raw text must not be taught as "not an
    # entity". Words the new data annotates as ANIMAL are missing in silver; the rest is O.
    original = ruler_pipeline(PATTERNS)
    nlp = spacy.blank("en")
    new_data = to_examples(nlp, [("The cat sat .", {"entities": [(4, 7, NEW)]}),
                                 ("A big Horse ran .", {"entities": [(2, 11, NEW)]})])
    unsure = entity_words(new_data, {NEW})
    assert unsure == {"cat", "big", "horse"}
    (silver,) = Rehearsal(original, new_labels={NEW}).silver(["A cat , a horse and an apple ."], unsure)
    iob = [(t.text, t.ent_iob_, t.ent_type_) for t in silver.reference]
    assert iob == [("A", "O", ""), ("cat", "", ""), (",", "O", ""), ("a", "O", ""), ("horse", "", ""),
                   ("and", "O", ""), ("an", "O", ""), ("apple", "B", "FRUIT"), (".", "O", "")]
    (plain,) = Rehearsal(original, new_labels={NEW}).silver(["A cat ."])
    assert [t.ent_iob_ for t in plain.reference] == ["O", "O", "O"]


def test_silver_with_student_leaves_what_it_finds_of_the_new_label_unannotated():
    original = ruler_pipeline(PATTERNS)
    rehearsal = Rehearsal(original, new_labels={NEW})
    silver = rehearsal.silver(["A goat ate an apple .", "Nothing here ."], unsure={"cat"})
    # The student finds the goat (ANIMAL), and calls "apple" an ANIMAL too: an old entity
    # stays as the original predicted it.
    student = ruler_pipeline([{"label": NEW, "pattern": "goat"}, {"label": NEW, "pattern": "apple"}])
    first, second = rehearsal.with_student(silver, student)
    assert [(t.text, t.ent_iob_, t.ent_type_) for t in first.reference] == [
        ("A", "O", ""), ("goat", "", ""), ("ate", "O", ""), ("an", "O", ""), ("apple", "B", "FRUIT"),
        (".", "O", "")]
    assert second is silver[1]  # nothing new found: the same example
    assert [t.ent_iob_ for t in silver[0].reference] == ["O", "O", "O", "O", "B", "O"]  # not changed in place


def test_original_without_ner_or_only_new_labels_rehearses_nothing():
    assert Rehearsal(spacy.blank("en"), new_labels={NEW}).old_labels == set()
    assert Rehearsal(ruler_pipeline([{"label": NEW, "pattern": "cat"}]), new_labels={NEW}).old_labels == set()


def test_rehearsal_teaches_exactly_the_base_predictions_on_the_training_texts(base_path, base):
    """What train(rehearse=True) updates with: the gold ANIMAL plus the base's FRUIT."""
    nlp = spacy.load(base_path)
    batches = record_updates(nlp)
    train(nlp, NEW_DATA, n_iter=1, seed=0, rehearse=True)
    taught = {eg.reference.text: sorted((e.start, e.end, e.label_) for e in eg.reference.ents)
              for batch in batches for eg in batch}
    assert set(taught) == set(NEW_TEXTS)
    expected_fruit = dict(zip(NEW_TEXTS, label_ents(base, NEW_TEXTS, OLD)))
    for text, ann in NEW_DATA:
        doc = nlp.make_doc(text)
        gold = [(s.start, s.end, s.label_) for s in (doc.char_span(*e) for e in ann["entities"])]
        fruit = [(s, e, OLD) for s, e in expected_fruit[text]
                 if not any(gs < e and s < ge for gs, ge, _ in gold)]
        assert taught[text] == sorted(gold + fruit)


def test_naive_fine_tuning_teaches_fruits_as_outside(base_path):
    nlp = spacy.load(base_path)
    batches = record_updates(nlp)
    train(nlp, NEW_DATA, n_iter=1, seed=0, rehearse=False)
    assert all(e.label_ == NEW for batch in batches for eg in batch for e in eg.reference.ents)


def test_partial_annotation_keeps_old_label_predictions_on_training_texts(base, naive, rehearsed):
    rehearsed_nlp, _ = rehearsed
    naive_nlp, _ = naive
    # The base's FRUIT entities on the training texts, where they overlap no gold ANIMAL.
    target = rehearsable(base, NEW_DATA)
    assert sum(len(eg.reference.ents) for eg in target) >= 0.8 * len(NEW_DATA)  # one fruit per text
    kept = evaluate(rehearsed_nlp, target).per_label[OLD]["f"]
    lost = evaluate(naive_nlp, target).per_label.get(OLD, {"f": 0.0})["f"]
    assert kept >= 0.95, f"rehearsed: FRUIT agreement with the base on the training texts {kept:.3f}"
    assert kept > lost, f"rehearsal ({kept:.3f}) should keep more of FRUIT than naive fine-tuning ({lost:.3f})"
    # Against all of the base's FRUIT predictions, and on texts neither model trained on.
    assert agreement(rehearsed_nlp, base, NEW_TEXTS) > agreement(naive_nlp, base, NEW_TEXTS)
    assert agreement(rehearsed_nlp, base, HELD_TEXTS) > agreement(naive_nlp, base, HELD_TEXTS)
    assert agreement(rehearsed_nlp, base, HELD_TEXTS) >= 0.8


def test_both_learn_the_new_label(naive, rehearsed):
    for nlp, _ in (naive, rehearsed):
        assert set(nlp.get_pipe("ner").labels) == {OLD, NEW}
        f = evaluate(nlp, list(to_examples(nlp, NEW_DATA))).per_label[NEW]["f"]
        assert f >= 0.9, f"ANIMAL F on the training data {f:.3f}"


def test_rehearse_without_old_labels_is_naive_training(base_path):
    """New data that carries every label the base knows: nothing to rehearse, same model."""
    data = make_data(NEW_TEMPLATES, 20, {NEW, OLD}, seed=5)
    first, _ = fine_tune(base_path, data=data, n_iter=2, rehearse=True)
    second, _ = fine_tune(base_path, data=data, n_iter=2, rehearse=False)
    assert all_ents(first, HELD_TEXTS) == all_ents(second, HELD_TEXTS)


def test_streamed_rehearsal_teaches_the_original_predictions_in_every_epoch(base_path, base):
    """Streamed (buffer_size > 0), the training texts' old-label gold is predicted as they are
    read, every epoch, and nothing is kept; the predictions must still be the original's, not
    the model's being trained: here that model forgets every fruit after the first epoch."""
    nlp = spacy.load(base_path)
    batches = record_updates(nlp)

    def forget(row):
        if row["epoch"] == 1:  # from now on the student predicts nonsense
            upper = nlp.get_pipe("ner").model.get_ref("upper")
            upper.set_param("W", upper.ops.alloc2f(*upper.get_param("W").shape))
            upper.set_param("b", upper.ops.alloc1f(upper.get_param("b").shape[0]))
            forgotten.append(label_ents(nlp, texts, OLD) != [expected[text] for text in texts])

    forgotten: List[bool] = []
    data = make_data(NEW_TEMPLATES, 300, {NEW}, seed=6)  # more than one batch of predictions
    texts = [text for text, _ in data]
    expected = {text: fruit for text, fruit in zip(texts, label_ents(base, texts, OLD))}
    train(nlp, data, n_iter=2, seed=0, rehearse=True, buffer_size=8, batch_size=8, on_epoch=forget,
          learn_rate=0.0)
    assert forgotten == [True]
    taught = [eg for batch in batches for eg in batch]
    assert len(taught) == 2 * len(data)
    second = taught[len(data):]
    assert sum(len(expected[eg.reference.text]) for eg in second) >= len(data) / 2
    for eg in second:
        ents = eg.reference.ents
        animals = [(e.start, e.end) for e in ents if e.label_ == NEW]
        want = [(s, e) for s, e in expected[eg.reference.text] if not any(a < e and s < b for a, b in animals)]
        assert [(e.start, e.end) for e in ents if e.label_ == OLD] == want, eg.reference.text


def test_streamed_rehearsal_reads_the_data_twice_before_training(base_path, tmp_path):
    """A streamed corpus may not fit in memory: setup reads it at most twice (the labels, the
    new labels' words), then once an epoch."""
    train_path = write_jsonl(tmp_path / "train.jsonl", NEW_DATA)
    inner = NerCorpus(train_path)
    reads = []

    def counted(nlp):
        reads.append(1)
        return inner(nlp)

    raw = [t for t, _ in make_data(BASE_TEMPLATES, 20, set(), seed=11)]
    result = train(spacy.load(base_path), counted, n_iter=2, seed=0, rehearse=True, rehearse_data=raw,
                   buffer_size=8, batch_size=8)
    assert 1 + 2 <= len(reads) <= 2 + 2
    assert result.retention_examples  # rehearsal ran, holding back raw texts


# 2. Raw rehearsal texts


def test_read_texts_plain_lines(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text("An apple a day.\n\n  Two bananas.  \r\nThe end\n", encoding="utf8")
    assert list(read_texts(path)) == ["An apple a day.", "Two bananas.", "The end"]
    assert list(read_texts(str(path))) == ["An apple a day.", "Two bananas.", "The end"]


def test_read_texts_jsonl(tmp_path):
    path = tmp_path / "raw.jsonl"
    path.write_text('{"text": "An apple."}\n\n{"text": "A cherry.", "meta": {"id": 2}}\n', encoding="utf8")
    assert list(read_texts(path)) == ["An apple.", "A cherry."]


def test_read_texts_json_records_in_a_text_file(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text('{"text": "From JSON."}\nPlain line.\n', encoding="utf8")
    assert list(read_texts(path)) == ["From JSON.", "Plain line."]


def test_read_texts_unicode(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text("Äpfel und Birnen – 苹果\n", encoding="utf8")
    assert list(read_texts(path)) == ["Äpfel und Birnen – 苹果"]


@pytest.mark.parametrize("name,content,line", [
    ("bad.jsonl", b'{"text": "ok"}\n{"text": "broken\n', 2),
    ("bad.jsonl", b'{"text": "ok"}\n\n["a", "list"]\n', 3),
    ("bad.jsonl", b'{"txt": "no text key"}\n', 1),
    ("bad.jsonl", b'{"text": 42}\n', 1),
    ("bad.txt", b"fine\n{not json}\n", 2),
    ("bad.txt", b"fine\nstill fine\n\xff\xfe broken bytes\n", 3),
    ("bad.jsonl", b'{"text": "caf\xe9"}\n', 1),
])
def test_read_texts_rejects_bad_lines_naming_file_and_line(tmp_path, name, content, line):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(NerDataError) as err:
        list(read_texts(path))
    assert err.value.line == line
    assert f"{path}:{line}:" in str(err.value)


def test_read_texts_missing_file(tmp_path):
    with pytest.raises(NerDataError) as err:
        list(read_texts(tmp_path / "nope.txt"))
    assert "nope.txt" in str(err.value)


def test_read_texts_directory_of_text_and_jsonl_files(tmp_path):
    """A directory of raw-text files: plain text (.txt) and JSONL, read in sorted order."""
    (tmp_path / "a.txt").write_text("First text.\nSecond text.\n", encoding="utf8")
    (tmp_path / "b.jsonl").write_text('{"text": "Third text."}\n', encoding="utf8")
    assert list(read_texts(tmp_path)) == ["First text.", "Second text.", "Third text."]


def test_train_takes_raw_texts_as_path_or_list(base_path, tmp_path):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 20, set(), seed=7)]
    path = tmp_path / "raw.txt"
    path.write_text("\n".join(raw) + "\n", encoding="utf8")
    from_path, _ = fine_tune(base_path, n_iter=2, rehearse=True, rehearse_data=path, rehearse_ratio=0.5)
    from_list, _ = fine_tune(base_path, n_iter=2, rehearse=True, rehearse_data=raw, rehearse_ratio=0.5)
    assert all_ents(from_path, HELD_TEXTS) == all_ents(from_list, HELD_TEXTS)


@pytest.mark.parametrize("ratio", [0.5, 2.0])
def test_rehearse_ratio_mixes_silver_examples_into_every_epoch(base_path, base, ratio):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 30, set(), seed=8)]
    nlp = spacy.load(base_path)
    batches = record_updates(nlp)
    # dev data given, so no raw text is held back for retention: all 30 are rehearsed.
    train(nlp, NEW_DATA, n_iter=2, seed=0, rehearse=True, rehearse_data=raw, rehearse_ratio=ratio,
          dev_data=NEW_DEV)
    seen = [eg for batch in batches for eg in batch]
    n_gold, n_silver = len(NEW_DATA), int(len(NEW_DATA) * ratio)
    assert len(seen) == 2 * (n_gold + n_silver)
    silver = [eg for eg in seen if eg.reference.text in set(raw)]
    assert len(silver) == 2 * n_silver
    # Silver examples carry the base's FRUIT predictions and nothing else.
    expected = dict(zip(raw, label_ents(base, raw, OLD)))
    for eg in silver:
        assert [(e.start, e.end) for e in eg.reference.ents] == expected[eg.reference.text]
        assert {e.label_ for e in eg.reference.ents} <= {OLD}
        # The animals NEW_DATA annotates are left unannotated, never taught as O.
        for token in eg.reference:
            if token.text in ANIMALS:
                assert token.ent_iob_ == "", (eg.reference.text, token.text)
    assert any(t.text in ANIMALS for eg in silver for t in eg.reference)


def test_interleave_ratio():
    gold, silver = list(range(10)), ["s1", "s2", "s3"]
    mixed = list(interleave(gold, silver, 0.5, random.Random(0)))
    assert [x for x in mixed if isinstance(x, int)] == gold
    assert len(mixed) == 15
    assert list(interleave(gold, [], 2.0, random.Random(0))) == gold
    assert len(list(interleave(gold, silver, 2.0, random.Random(0)))) == 30


# 3. The registered wrapper, in spaCy's own training


def spacy_config(base: Path, train_path: Path, dev_path: Path, raw: Optional[Path] = None) -> str:
    raw_line = f'raw_path = "{raw}"' if raw else "raw_path = null"
    return f"""
[paths]
train = "{train_path}"
dev = "{dev_path}"
base = "{base}"

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["ner"]
batch_size = 64

[components]

[components.ner]
source = ${{paths.base}}

[corpora]

[corpora.train]
@readers = "spacy-ner-trainer.RehearsalCorpus.v1"
source = ${{paths.base}}
{raw_line}
ratio = 0.5
seed = 0

[corpora.train.corpus]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${{paths.train}}

[corpora.dev]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${{paths.dev}}

[training]
seed = 0
dropout = 0.2
max_epochs = {FINE_TUNE_EPOCHS}
max_steps = 0
eval_frequency = 100000
patience = 0
frozen_components = []
gpu_allocator = null
train_corpus = "corpora.train"
dev_corpus = "corpora.dev"

[training.batcher]
@batchers = "spacy.batch_by_sequence.v1"
size = 8
get_length = null

[training.logger]
@loggers = "spacy.ConsoleLogger.v1"
progress_bar = false

[training.optimizer]
@optimizers = "Adam.v1"

[training.score_weights]
ents_f = 1.0
ents_p = 0.0
ents_r = 0.0
ents_per_type = null

[initialize]
vectors = null

[initialize.before_init]
@callbacks = "spacy.copy_from_base_model.v1"
tokenizer = ${{paths.base}}
vocab = ${{paths.base}}
"""


def test_rehearsal_corpus_in_spacy_train_keeps_the_old_label(base_path, base, tmp_path):
    from spacy.cli.train import train as spacy_train

    train_path = write_jsonl(tmp_path / "train.jsonl", NEW_DATA)
    dev_path = write_jsonl(tmp_path / "dev.jsonl", NEW_DEV)
    raw = tmp_path / "raw.txt"
    raw.write_text("\n".join(t for t, _ in make_data(BASE_TEMPLATES, 16, set(), seed=9)) + "\n", encoding="utf8")
    config_path = tmp_path / "config.cfg"
    config_path.write_text(spacy_config(base_path, train_path, dev_path, raw), encoding="utf8")
    spacy_train(config_path, tmp_path / "output")
    nlp = spacy.load(tmp_path / "output" / "model-last")
    assert set(nlp.get_pipe("ner").labels) == {OLD, NEW}
    assert any(OLD in [e.label_ for e in doc.ents] for doc in nlp.pipe(HELD_TEXTS))
    kept = agreement(nlp, base, NEW_TEXTS)
    assert kept >= 0.8, f"FRUIT agreement with the base after spacy train with RehearsalCorpus.v1: {kept:.3f}"
    f = evaluate(nlp, NerCorpus(train_path)(nlp)).per_label[NEW]["f"]
    assert f > 0.5, f"ANIMAL F on the training data {f:.3f}"


def test_rehearsal_corpus_fills_the_gold(base_path, base, tmp_path):
    """The corpus the wrapper yields: the wrapped corpus's gold plus the base's FRUIT, then
    `ratio` silver examples per gold example."""
    from spacy.util import registry

    train_path = write_jsonl(tmp_path / "train.jsonl", NEW_DATA)
    raw = tmp_path / "raw.jsonl"
    raw_texts = [t for t, _ in make_data(BASE_TEMPLATES, 10, set(), seed=10)]
    raw.write_text("".join(json.dumps({"text": t}) + "\n" for t in raw_texts), encoding="utf8")
    make = registry.readers.get("spacy-ner-trainer.RehearsalCorpus.v1")
    corpus = make(corpus=NerCorpus(train_path), source=str(base_path), raw_path=str(raw), ratio=0.5)
    nlp = spacy.blank("en")
    for _ in range(2):  # spaCy reads a corpus once an epoch
        examples = list(corpus(nlp))
        gold = [eg for eg in examples if eg.reference.text in set(NEW_TEXTS)]
        silver = [eg for eg in examples if eg.reference.text in set(raw_texts)]
        assert len(gold) == len(NEW_DATA) and len(silver) == len(NEW_DATA) // 2
        assert [eg.reference.text for eg in gold] == NEW_TEXTS
        base_fruit = dict(zip(NEW_TEXTS, label_ents(base, NEW_TEXTS, OLD)))
        for eg in gold:
            animals = [(e.start, e.end) for e in eg.reference.ents if e.label_ == NEW]
            assert animals, eg.reference.text
            expected = [(s, e) for s, e in base_fruit[eg.reference.text]
                        if not any(a < e and s < b for a, b in animals)]
            assert [(e.start, e.end) for e in eg.reference.ents if e.label_ == OLD] == expected


def test_rehearsal_corpus_reads_the_wrapped_corpus_once_at_setup(base_path, tmp_path):
    """Setup learns the new labels and their entity words in one pass (a corpus may be larger
    than memory), then every epoch reads it once; the silver examples leave those words
    unannotated."""
    from spacy.util import registry

    train_path = write_jsonl(tmp_path / "train.jsonl", NEW_DATA)
    raw = tmp_path / "raw.txt"
    raw.write_text("A cat ate an apple .\n", encoding="utf8")
    reads = []
    inner = NerCorpus(train_path)

    def counted(nlp):
        reads.append(1)
        return inner(nlp)

    make = registry.readers.get("spacy-ner-trainer.RehearsalCorpus.v1")
    corpus = make(corpus=counted, source=str(base_path), raw_path=str(raw), ratio=1.0)
    nlp = spacy.blank("en")
    first = list(corpus(nlp))
    assert len(reads) == 2  # setup + the first epoch
    list(corpus(nlp))
    assert len(reads) == 3
    assert "cat" in {t.lower_ for eg in first for ent in eg.reference.ents if ent.label_ == NEW for t in ent}
    silver = next(eg for eg in first if eg.reference.text == "A cat ate an apple .")
    iob = {t.text: (t.ent_iob_, t.ent_type_) for t in silver.reference}
    assert iob["cat"] == ("", "") and iob["ate"] == ("O", "") and iob["apple"] == ("B", OLD)


def test_init_config_keeps_the_original_by_default_and_spacy_train_runs_it(base_path, base, tmp_path):
    from spacy.cli.train import train as spacy_train
    from spacy_ner_trainer.init_config import make_config

    train_path = write_jsonl(tmp_path / "train.jsonl", NEW_DATA)
    dev_path = write_jsonl(tmp_path / "dev.jsonl", NEW_DEV)
    config, notes = make_config(train_path, dev_path, model=str(base_path))
    assert config["nlp"]["pipeline"] == ["ner_confident", "ner_new", "ner"]
    assert config["components"]["ner_new"] == {"source": str(base_path), "component": "ner"}
    assert config["components"]["ner_confident"] == {"source": str(base_path), "component": "ner"}
    assert config["training"]["frozen_components"] == ["ner_confident", "ner"]
    assert config["corpora"]["train"]["@readers"] == "spacy-ner-trainer.NerCorpus.v1"
    assert config["initialize"]["after_init"]["@callbacks"] == "spacy-ner-trainer.follow_labels.v1"
    assert any("ner_new" in note and "--no-keep-original" in note for note in notes)
    # The copy learns at the pipeline's rate, as train() teaches it; the original is frozen.
    assert config["training"]["optimizer"]["learn_rate"] == 0.001
    assert any("ner_new learns at the pipeline's learn rate, 0.001" in note for note in notes)
    config["training"].update({"max_epochs": FINE_TUNE_EPOCHS, "max_steps": 0, "eval_frequency": 100000})
    config.to_disk(tmp_path / "config.cfg")
    spacy_train(tmp_path / "config.cfg", tmp_path / "output")
    nlp = spacy.load(tmp_path / "output" / "model-last")
    assert nlp.pipe_names == ["ner_confident", "ner_new", "ner"]
    assert alone(nlp, HELD_TEXTS + NEW_TEXTS, COPIES) == all_ents(base, HELD_TEXTS + NEW_TEXTS)
    assert NEW in nlp.get_pipe("ner").labels  # followed, never predicted by the original itself
    # Three objects: the confident pass is the original with its bar, never an ANIMAL.
    assert len({id(nlp.get_pipe(name)) for name in nlp.pipe_names}) == 3
    confident = alone(nlp, HELD_TEXTS + NEW_TEXTS, ["ner_new", "ner"])
    assert all(label == OLD for doc in confident for _, _, label in doc)
    assert all(set(c) <= set(b) for c, b in zip(confident, all_ents(base, HELD_TEXTS + NEW_TEXTS)))
    f = evaluate(nlp, NerCorpus(train_path)(nlp)).per_label[NEW]["f"]
    assert f > 0.5, f"ANIMAL F on the training data {f:.3f}"


def test_init_config_no_keep_original_uses_the_rehearsal_corpus(base_path, tmp_path):
    train_path = write_jsonl(tmp_path / "train.jsonl", NEW_DATA)
    code, out, err = run_cli("init-config", "out.cfg", "--train", train_path, "--model", base_path,
                             "--no-keep-original", cwd=tmp_path)
    assert code == 0, out + err
    config = Config().from_disk(tmp_path / "out.cfg", interpolate=False)
    reader = config["corpora"]["train"]
    assert reader["@readers"] == "spacy-ner-trainer.RehearsalCorpus.v1"
    assert reader["source"] == str(base_path)
    assert reader["corpus"]["@readers"] == "spacy-ner-trainer.NerCorpus.v1"
    assert reader["corpus"]["path"] == "${paths.train}"
    assert config["components"]["ner"]["source"] == str(base_path)
    assert config["corpora"]["dev"]["@readers"] == "spacy-ner-trainer.NerCorpus.v1"


def test_init_config_without_ner_in_the_model_does_not_rehearse(tmp_path):
    from spacy_ner_trainer.init_config import make_config

    blank = tmp_path / "blank"
    spacy.blank("en").to_disk(blank)
    train_path = write_jsonl(tmp_path / "train.jsonl", NEW_DATA)
    config, _ = make_config(train_path, model=str(blank))
    assert config["corpora"]["train"]["@readers"] == "spacy-ner-trainer.NerCorpus.v1"


# 4. The command line


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("rehearse-cli")
    write_jsonl(folder / "new.jsonl", NEW_DATA)
    write_jsonl(folder / "dev.jsonl", NEW_DEV)
    raw = [t for t, _ in make_data(BASE_TEMPLATES, 30, set(), seed=11)]
    (folder / "raw.txt").write_text("\n".join(raw) + "\n", encoding="utf8")
    return folder


def test_cli_keeps_the_original_by_default_and_reports_retention(base_path, cli_files, tmp_path):
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "out",
                             "--dev", cli_files / "dev.jsonl", "-n", 4, "--min-recall", 0, "-q", cwd=tmp_path)
    assert code == 0, out + err
    announce = [line for line in out.splitlines() if "Kept 'ner' unchanged" in line]
    assert announce and OLD in announce[0] and "'ner_new'" in announce[0]
    assert "--no-keep-original" in out  # how to turn it off
    assert "Rehearsed" not in out
    retention = out.split("Retention", 1)[1]
    assert re.search(rf"^\s*{OLD}\s+\d\.\d{{3}}\s+\d\.\d{{3}}\s+\d\.\d{{3}}\s+\d+", retention, re.M), retention
    nlp = spacy.load(tmp_path / "out" / "model-best")
    assert nlp.pipe_names == ["ner_confident", "ner_new", "ner"]
    assert "'ner_confident'" in out.split("Kept 'ner' unchanged", 1)[1].split("--no-keep-original")[0]
    assert set(nlp.get_pipe("ner_new").labels) == {OLD, NEW}
    meta = json.loads((tmp_path / "out" / "model-best" / "meta.json").read_text(encoding="utf8"))
    assert meta["spacy_ner_trainer"]["kept"] == [OLD] and meta["spacy_ner_trainer"]["trained"] == "ner_new"
    assert meta["spacy_ner_trainer"]["confident"] == "ner_confident"


def test_cli_no_keep_original_rehearses_by_default(base_path, cli_files, tmp_path):
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "out",
                             "--no-keep-original", "--dev", cli_files / "dev.jsonl", "-n", 2, "--min-recall", 0,
                             "-q", cwd=tmp_path)
    assert code == 0, out + err
    announce = [line for line in out.splitlines() if "Rehearsed" in line]
    assert announce and OLD in announce[0] and "--no-rehearse" in announce[0]
    assert "Retention" in out
    nlp = spacy.load(tmp_path / "out" / "model-best")
    assert nlp.pipe_names == ["ner"] and set(nlp.get_pipe("ner").labels) == {OLD, NEW}


def test_cli_no_rehearse(base_path, cli_files, tmp_path):
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "out",
                             "--no-rehearse", "-n", 2, "--min-recall", 0, "-q", cwd=tmp_path)
    assert code == 0, out + err
    assert "Rehearsed" not in out
    assert (tmp_path / "out" / "model-last" / "meta.json").exists()


@pytest.mark.parametrize("margin,pipeline", [("inf", ["ner_new", "ner"]), ("2.5", ["ner_confident", "ner_new", "ner"])])
def test_cli_original_margin_sets_or_leaves_out_the_confident_pass(base_path, cli_files, tmp_path, margin, pipeline):
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "out",
                             "--original-margin", margin, "-n", 1, "--min-recall", 0, "-q", cwd=tmp_path)
    assert code == 0, out + err
    assert spacy.load(tmp_path / "out" / "model-last").pipe_names == pipeline
    meta = json.loads((tmp_path / "out" / "model-last" / "meta.json").read_text(encoding="utf8"))
    assert meta["spacy_ner_trainer"]["confident_margin"] == (None if margin == "inf" else float(margin))
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "bad",
                             "--original-margin", "-1", "-n", 1, "-q", cwd=tmp_path)
    assert code == 2 and "not a margin" in out + err and not (tmp_path / "bad").exists()


def test_cli_rehearse_data_and_ratio(base_path, cli_files, tmp_path):
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "out",
                             "--rehearse", "--rehearse-data", cli_files / "raw.txt", "--rehearse-ratio", 0.5,
                             "--rehearse-distill", 0.5, "-n", 2, "--min-recall", 0, "-q", cwd=tmp_path)
    assert code == 0, out + err
    assert "Rehearsed" in out
    # Without --dev, part of the raw texts is held back to measure retention on.
    assert "Retention" in out


@pytest.mark.parametrize("args,said", [(["--rehearse-ratio", -1], "negative"), (["--rehearse-distill", -1], "negative"),
                                       (["--keep-original", "--rehearse"], "choose one")])
def test_cli_impossible_rehearsal_settings_fail_before_writing(base_path, cli_files, tmp_path, args, said):
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "out",
                             "--rehearse-data", cli_files / "raw.txt", *args, "-q", cwd=tmp_path)
    assert code == 2, out + err
    assert str(args[0]) in out + err and said in out + err
    assert not (tmp_path / "out").exists()


def test_cli_bad_rehearse_data_fails_cleanly(base_path, cli_files, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine"}\n{"text": oops}\n', encoding="utf8")
    code, out, err = run_cli("train", cli_files / "new.jsonl", "--model", base_path, "-o", tmp_path / "out",
                             "--rehearse-data", bad, "-n", 1, "-q", cwd=tmp_path)
    assert code == 2
    assert f"{bad}:2:" in out + err
    assert "Traceback" not in out + err


@pytest.mark.slow
def test_cli_blank_model_does_not_rehearse(cli_files, tmp_path):
    code, out, err = run_cli("train", cli_files / "new.jsonl", "-n", 1, "--min-recall", 0, "-q", cwd=tmp_path)
    assert code == 0, out + err
    assert "Rehearsed" not in out and "Retention" not in out


# 5. Determinism


def test_rehearsal_is_deterministic_under_a_seed(base_path):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 20, set(), seed=12)]
    runs = [fine_tune(base_path, n_iter=3, seed=7, rehearse=True, rehearse_data=raw, rehearse_ratio=0.7)
            for _ in range(2)]
    (first, first_result), (second, second_result) = runs
    assert first_result.losses == second_result.losses
    texts = HELD_TEXTS + NEW_TEXTS
    assert all_ents(first, texts) == all_ents(second, texts)
    assert first.get_pipe("ner").to_bytes() == second.get_pipe("ner").to_bytes()


def test_rehearsal_seed_matters(base_path):
    """The determinism check above is not vacuous: another seed trains differently."""
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 20, set(), seed=12)]
    _, first = fine_tune(base_path, n_iter=2, seed=7, rehearse=True, rehearse_data=raw, rehearse_ratio=0.7)
    _, other = fine_tune(base_path, n_iter=2, seed=8, rehearse=True, rehearse_data=raw, rehearse_ratio=0.7)
    assert first.losses != other.losses


# 6. Retention in verify


def test_verify_reports_retention_per_old_label(base, rehearsed, naive):
    nlp, result = rehearsed
    assert result.retention_examples, "dev data given: its texts are held back for retention"
    assert [eg.reference.text for eg in result.retention_examples] == [t for t, _ in NEW_DEV]
    # The retention examples are the base's FRUIT predictions on the dev texts.
    assert [[(e.start, e.end) for e in eg.reference.ents] for eg in result.retention_examples] == \
        label_ents(base, [t for t, _ in NEW_DEV], OLD)
    report = verify(nlp, NEW_DEV, round_trip=False, retention=result.retention_examples)
    assert set(report.retention) == {OLD}
    scores = report.retention[OLD]
    assert set(scores) >= {"p", "r", "f", "support"}
    assert scores["support"] == sum(len(eg.reference.ents) for eg in result.retention_examples) > 0
    assert scores["f"] >= 0.75
    assert report.per_label[NEW]["support"] > 0  # the new labels' scores, beside retention
    assert report.to_dict()["retention"] == report.retention
    # The same examples show what naive fine-tuning lost.
    naive_nlp, _ = naive
    lost = verify(naive_nlp, NEW_DEV, round_trip=False, retention=result.retention_examples)
    assert lost.retention[OLD]["f"] < scores["f"]


def test_naive_training_with_dev_still_measures_retention(naive, rehearsed):
    """Retention is measured whether or not the training rehearses: that is how to see what
    naive fine-tuning forgets."""
    _, result = naive
    _, rehearsed_result = rehearsed
    assert [eg.reference.text for eg in result.retention_examples] == \
        [eg.reference.text for eg in rehearsed_result.retention_examples]


def test_retention_from_held_back_raw_texts(base_path):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 20, set(), seed=13)]
    _, result = fine_tune(base_path, n_iter=1, rehearse=True, rehearse_data=raw)
    held = [eg.reference.text for eg in result.retention_examples]
    assert held == raw[-2:], "a tenth of the raw texts is held back when there is no dev data"


def test_no_retention_without_old_labels(tmp_path):
    nlp = spacy.blank("en")
    result = train(nlp, NEW_DATA, n_iter=1, seed=0, dev_data=NEW_DEV, rehearse=True)
    assert result.retention_examples == []
    assert verify(nlp, NEW_DEV, round_trip=False, retention=result.retention_examples).retention is None


# 7. The rehearsal core: the original's copy, lazy reading, distillation, the plan


def resumed(base_path: Path, labels: Sequence[str] = (NEW,)) -> Tuple[Language, object]:
    """The base loaded, its ner taught `labels` and resumed: what train() trains."""
    nlp = spacy.load(base_path)
    for label in labels:
        nlp.get_pipe("ner").add_label(label)
    return nlp, nlp.resume_training()


def scramble(nlp: Language) -> None:
    """Overwrite the ner's output layer: the pipeline now predicts nonsense."""
    upper = nlp.get_pipe("ner").model.get_ref("upper")
    upper.set_param("W", upper.get_param("W")[::-1].copy())


def test_rehearsal_predicts_with_the_copy_resume_training_made(base_path, base):
    """Once nlp.resume_training() has copied ner's model, the pipeline in training is its own
    original: whatever training does to it, Rehearsal predicts what it predicted before."""
    nlp, _ = resumed(base_path)
    texts = HELD_TEXTS + NEW_TEXTS
    scramble(nlp)
    assert all_ents(nlp, texts) != all_ents(base, texts)
    rehearsal = Rehearsal(nlp, {NEW})
    predicted = list(rehearsal.predict(nlp.make_doc(t) for t in texts))
    assert predicted == label_ents_with_labels(base, texts)
    assert [[(e.start, e.end) for e in eg.reference.ents] for eg in rehearsal.silver(texts)] == \
        label_ents(base, texts, OLD)
    assert all_ents(nlp, texts) != all_ents(base, texts), "the pipeline's own model is back in place"


def label_ents_with_labels(nlp: Language, texts: Sequence[str]) -> List[List[Tuple[int, int, str]]]:
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def test_fill_reads_a_batch_at_a_time_and_keeps_nothing(base_path):
    """Streamed data may not fit in memory: fill predicts as it reads and keeps no text."""
    nlp = spacy.load(base_path)
    examples = to_examples(nlp, make_data(NEW_TEMPLATES, 300, {NEW}, seed=14))
    read = []

    def counted():
        for eg in examples:
            read.append(1)
            yield eg

    rehearsal = Rehearsal(nlp, {NEW})
    filled = rehearsal.fill(counted())
    next(filled)
    assert len(read) == 256  # one prediction batch
    before = dict(vars(rehearsal))
    list(filled)
    assert len(read) == 300
    assert vars(rehearsal) == before


def test_raw_texts_read_lazily_by_number(tmp_path):
    path = tmp_path / "raw.jsonl"
    texts = [f"Text number {i} ." for i in range(50)] + ["Äpfel – 苹果"]
    path.write_text("".join(json.dumps({"text": t}) + ("\n\n" if i % 7 == 0 else "\n") for i, t in enumerate(texts)),
                    encoding="utf8")
    raw = RawTexts(path)
    assert len(raw) == len(texts)
    assert [raw[i] for i in (50, 0, 17)] == [texts[50], texts[0], texts[17]]
    assert raw[48:] == texts[48:]
    assert list(raw) == texts == list(RawTexts(texts))
    assert list(read_texts(path)) == texts


def test_raw_texts_check_every_line_up_front(tmp_path):
    path = tmp_path / "raw.txt"
    path.write_text("fine\nstill fine\n{broken\n", encoding="utf8")
    with pytest.raises(NerDataError) as err:
        RawTexts(path)
    assert f"{path}:3:" in str(err.value)


def test_distill_pulls_the_student_back_to_the_original(base_path, base):
    """A student that has lost its fruits learns them back from distillation on raw texts alone."""
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 40, set(), seed=15)]
    nlp, sgd = resumed(base_path)
    scramble(nlp)
    lost = agreement(nlp, base, HELD_TEXTS)
    losses: Dict[str, float] = {}
    with nlp.select_pipes(enable=["ner"]):
        for step in range(40):
            distill(nlp, random.Random(step).sample(raw, 8), sgd=sgd, losses=losses)
    assert losses["ner_distill"] > 0
    kept = agreement(nlp, base, HELD_TEXTS)
    assert lost < 0.5 and kept >= 0.9, (lost, kept)


def test_distill_leaves_the_new_labels_moves_alone(base_path):
    """The original never learned the new label: distillation does not teach its moves, where
    spaCy's own rehearsal (Language.rehearse) teaches them the original's minimum score."""
    changed = {}
    for ours in (True, False):
        nlp, adam = resumed(base_path)
        upper = nlp.get_pipe("ner").model.get_ref("upper")
        new_moves = [i for i, row in enumerate(upper.get_param("W")) if not row.any()]  # ANIMAL's B, I, L, U
        assert len(new_moves) == 4
        sgd = SGD(0.01, L2=0.0)  # no momentum: a move without gradient stays where it is
        with nlp.select_pipes(enable=["ner"]):
            nlp.update(list(to_examples(nlp, NEW_DATA[:8])), sgd=adam)  # the student has seen ANIMAL
            before = upper.get_param("W").copy()
            for step in range(3):
                texts = NEW_TEXTS[step * 8: step * 8 + 8]
                if ours:
                    distill(nlp, texts, sgd=sgd, drop=0.2)
                else:
                    nlp.rehearse([Example(nlp.make_doc(t), nlp.make_doc(t)) for t in texts], sgd=sgd)
        after = upper.get_param("W")
        assert not (after == before).all()
        changed[ours] = not (after[new_moves] == before[new_moves]).all()
    assert changed == {True: False, False: True}


def test_distill_needs_resume_training(base_path):
    with pytest.raises(ValueError, match="resume_training"):
        distill(spacy.load(base_path), ["An apple ."])


def test_plan_rehearsal_only_when_the_ner_knows_labels_the_data_lacks(base_path, caplog):
    nlp = spacy.load(base_path)
    examples = list(to_examples(nlp, NEW_DATA))
    plan = plan_rehearsal(nlp, [NEW], examples, None)
    assert plan is not None and plan.old_labels == plan.rehearsed == [OLD]
    assert any("rehearsing FRUIT" in r.getMessage() for r in caplog.records)
    silent = plan_rehearsal(nlp, [NEW], examples, False, HELD_TEXTS)
    assert silent is not None and silent.rehearsed == [] and not silent.distills and silent.retention
    assert list(silent.fill(examples)) == examples and silent.epoch_silver(0) == []
    assert plan_rehearsal(nlp, [NEW, OLD], examples, True) is None
    assert plan_rehearsal(spacy.blank("en"), [NEW], examples, None) is None


def test_plan_holds_back_the_last_tenth_of_the_raw_texts_for_retention(base_path, base):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 30, set(), seed=16)]
    plan = RehearsalPlan(spacy.load(base_path), [NEW], (), raw)
    assert [eg.reference.text for eg in plan.retention] == raw[-3:]
    assert [[(e.start, e.end) for e in eg.reference.ents] for eg in plan.retention] == label_ents(base, raw[-3:], OLD)
    assert set(plan.draw(200, random.Random(0))) == set(raw[:-3])
    given = RehearsalPlan(spacy.load(base_path), [NEW], (), raw, retention_texts=HELD_TEXTS)
    assert [eg.reference.text for eg in given.retention] == HELD_TEXTS
    assert set(given.draw(300, random.Random(0))) == set(raw)


def test_plan_silver_is_drawn_by_seed_and_epoch(base_path, base):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 30, set(), seed=17)]
    nlp = spacy.load(base_path)
    examples = list(to_examples(nlp, NEW_DATA))
    plan = RehearsalPlan(nlp, [NEW], examples, raw, ratio=0.5, retention_texts=[])
    assert plan.n_examples == len(NEW_DATA) and "dog" in plan.unsure | {"cat"}
    first = plan.epoch_silver(0)
    assert len(first) == len(NEW_DATA) // 2
    assert [eg.reference.text for eg in first] == [eg.reference.text for eg in plan.epoch_silver(0)]
    assert [eg.reference.text for eg in first] != [eg.reference.text for eg in plan.epoch_silver(1)]
    expected = dict(zip(raw, label_ents(base, raw, OLD)))
    assert all([(e.start, e.end) for e in eg.reference.ents] == expected[eg.reference.text] for eg in first)
    mixed = list(plan.epoch(examples, first))
    assert [eg for eg in mixed if eg in examples] == examples and len(mixed) == len(examples) + len(first)
    assert mixed[1] is examples[1] and mixed[2] is first[0]  # one silver after every second example


def test_plan_distills_the_same_texts_at_the_same_step(base_path):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 30, set(), seed=18)]
    drawn = []
    for _ in range(2):
        nlp, sgd = resumed(base_path)
        plan = RehearsalPlan(nlp, [NEW], (), raw, distill_ratio=1.5, retention_texts=[])
        assert plan.distills
        distilled = []
        original_make_doc = nlp.make_doc
        nlp.make_doc = lambda text: distilled.append(text) or original_make_doc(text)  # type: ignore
        with nlp.select_pipes(enable=["ner"]):
            for step in (3, 7):
                plan.distill(nlp, step, 4, sgd=sgd, losses={})
        drawn.append(distilled)
    assert drawn[0] == drawn[1] and 2 * 6 <= len(drawn[0]) <= 2 * 6  # 1.5 x 4 a step
    assert not RehearsalPlan(spacy.load(base_path), [NEW], (), None).distills


def whole_and_resumed(base_path: Path, tmp_path: Path, cut_after: int, **kwargs) -> Tuple[Language, Language]:
    """The base fine-tuned on NEW_DATA uninterrupted, and the same run stopped by SIGINT after
    `cut_after` updates (inside an epoch) and resumed from its checkpoint."""
    whole = spacy.load(base_path)
    train(whole, NEW_DATA, checkpoint=tmp_path / "whole", **kwargs)
    nlp = spacy.load(base_path)
    update, updates = nlp.update, []

    def interrupting(*args, **kw):
        out = update(*args, **kw)
        updates.append(1)
        if len(updates) == cut_after:
            os.kill(os.getpid(), signal.SIGINT)
        return out

    nlp.update = interrupting  # type: ignore[method-assign]
    with pytest.raises(TrainingInterrupted):
        train(nlp, NEW_DATA, checkpoint=tmp_path / "cut", **kwargs)
    resumed = spacy.load(base_path)
    train(resumed, NEW_DATA, checkpoint=tmp_path / "cut", resume=True, **kwargs)
    return whole, resumed


def test_rehearsal_resumes_exactly_from_a_checkpoint(base_path, tmp_path):
    """Interrupted inside the second epoch and resumed, rehearsal (fill, silver examples drawn
    by epoch, distillation drawn by step) ends with the model an uninterrupted run ends with."""
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 30, set(), seed=19)]
    whole, resumed = whole_and_resumed(base_path, tmp_path, 16, n_iter=2, seed=3, rehearse=True, rehearse_data=raw,
                                       rehearse_ratio=0.5, patience=0, learn_rate=0.003)
    assert resumed.get_pipe("ner").model.to_bytes() == whole.get_pipe("ner").model.to_bytes()


@pytest.mark.parametrize("distill_ratio", [0.0, 0.5, 2.0])
def test_train_distills_raw_texts_with_every_batch(base_path, monkeypatch, distill_ratio):
    """train(rehearse_distill=r) distills about r raw texts per training example, with each
    batch, in the batch's one optimizer step; 0 turns distillation off."""
    import spacy_ner_trainer.rehearse as rehearse_module
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 30, set(), seed=21)]
    calls: List[Tuple[int, object]] = []
    real = rehearse_module.distill

    def spy(nlp, texts, **kwargs):
        texts = list(texts)
        calls.append((len(texts), kwargs["sgd"]))
        return real(nlp, texts, **kwargs)

    monkeypatch.setattr(rehearse_module, "distill", spy)
    nlp = spacy.load(base_path)
    sgd_args: List[object] = []
    update = nlp.update

    def recording(examples, *args, **kwargs):
        sgd_args.append(kwargs.get("sgd"))
        return update(examples, *args, **kwargs)

    nlp.update = recording  # type: ignore[method-assign]
    result = train(nlp, NEW_DATA, n_iter=2, seed=0, rehearse=True, rehearse_data=raw, rehearse_distill=distill_ratio,
                   dev_data=NEW_DEV, patience=0)
    assert result.rehearsed == [OLD]
    if not distill_ratio:
        assert calls == [] and all(sgd is not False for sgd in sgd_args)
        return
    assert len(calls) == len(sgd_args) and all(sgd is False for sgd in sgd_args)
    assert all(sgd is not None and sgd is not False for _, sgd in calls)  # the optimizer steps there
    wanted = distill_ratio * 2 * len(NEW_DATA)
    assert abs(sum(n for n, _ in calls) - wanted) <= max(3, 0.25 * wanted)


# 8. Keeping the original: a copy of the ner learns the data, before the unchanged original


def alone(nlp: Language, texts: Sequence[str], without: Sequence[str]) -> List[List[Tuple[int, int, str]]]:
    with nlp.select_pipes(disable=list(without)):
        return all_ents(nlp, texts)


COPIES = ["ner_confident", "ner_new"]  # what keeping the original adds before it


@pytest.fixture(scope="module")
def kept(base_path) -> Tuple[Language, TrainResult]:
    return fine_tune(base_path, dev_data=NEW_DEV)  # the default for a ner that knows FRUIT


def test_default_keeps_the_ner_and_trains_a_copy_before_it(base_path, kept, caplog):
    nlp, result = kept
    base = spacy.load(base_path)
    assert nlp.pipe_names == base.pipe_names[:-1] + ["ner_confident", "ner_new", "ner"]
    # The original, run alone, predicts what the base predicts.
    assert alone(nlp, HELD_TEXTS + NEW_TEXTS, COPIES) == all_ents(base, HELD_TEXTS + NEW_TEXTS)
    assert set(nlp.get_pipe("ner_new").labels) == {OLD, NEW}
    assert (result.kept, result.trained, result.rehearsed, result.confident) == ([OLD], "ner_new", [], "ner_confident")
    assert result.confident_margin is not None  # calibrated on the training data (see the confident tests)
    # The best epoch's dev score is the score of the pipeline as it ships (margin included).
    shipped = evaluate(nlp, list(to_examples(nlp, NEW_DEV))).scores["ents_f"]
    assert result.best_score == pytest.approx(shipped)
    assert result.to_dict()["kept"] == [OLD]
    with caplog.at_level("WARNING", logger="spacy_ner_trainer"):
        fine_tune(base_path, n_iter=1)
    said = [r.getMessage() for r in caplog.records if "keeping the ner" in r.getMessage()]
    assert len(said) == 1 and OLD in said[0] and "keep_original=False" in said[0]


def test_kept_original_finds_its_entities_and_the_copy_the_new_ones(base_path, base):
    """The copy is trained exactly as naive fine-tuning trains the ner at the pipeline's learn
    rate (0.001: it has nothing of its own to keep, FINE_TUNE_LEARN_RATE is for a ner that
    does): without a margin, the same ANIMAL entities; the original then finds its FRUITs
    around them, never an ANIMAL."""
    nlp, result = fine_tune(base_path, dev_data=NEW_DEV, new_label_margin=0.0, original_margin=math.inf)
    assert "ner_confident" not in nlp.pipe_names and result.confident is None
    assert result.learn_rate == base.config["training"]["optimizer"]["learn_rate"] == 0.001
    naive_nlp, _ = fine_tune(base_path, rehearse=False, dev_data=NEW_DEV, learn_rate=0.001)
    texts = [text for text, _ in NEW_DEV]
    copy_animals = [[(s, e) for s, e, label in doc if label == NEW] for doc in alone(nlp, texts, ["ner"])]
    assert copy_animals == label_ents(naive_nlp, texts, NEW)
    assert label_ents(nlp, texts, NEW) == copy_animals
    texts = HELD_TEXTS + NEW_TEXTS
    copy, both, original = alone(nlp, texts, ["ner"]), all_ents(nlp, texts), all_ents(base, texts)
    around = [[e for e in theirs if not any(s < e[1] and e[0] < t for s, t, _ in ours)]
              for theirs, ours in zip(original, copy)]
    assert sum(map(len, around)) >= len(texts) // 4, "too few FRUITs outside the copy's entities to test"
    found = sum(e in ents for wanted, ents in zip(around, both) for e in wanted)
    assert found >= 0.9 * sum(map(len, around)), f"{found} of {sum(map(len, around))} FRUITs kept"
    assert all(set(c) <= set(b) for c, b in zip(copy, both))  # the copy's entities stand
    assert agreement(nlp, base, texts) > agreement(naive_nlp, base, texts)


def test_kept_pipeline_saves_and_loads_as_plain_spacy(kept, tmp_path):
    nlp, _ = kept
    nlp.to_disk(tmp_path / "model")
    again = spacy.load(tmp_path / "model")
    assert again.pipe_names == nlp.pipe_names
    assert all_ents(again, HELD_TEXTS + NEW_TEXTS) == all_ents(nlp, HELD_TEXTS + NEW_TEXTS)


def test_explicit_rehearse_or_no_keep_trains_the_ner_itself(base_path):
    for kwargs in ({"rehearse": True}, {"rehearse": False}, {"keep_original": False}):
        nlp, result = fine_tune(base_path, n_iter=1, **kwargs)
        assert "ner_new" not in nlp.pipe_names and result.kept == [] and result.trained == "ner"
        assert result.learn_rate == FINE_TUNE_LEARN_RATE  # a ner fine-tuned itself keeps more at it
    _, result = fine_tune(base_path, n_iter=1, keep_original=False)
    assert result.rehearsed == [OLD]  # rehearsal stays the default when the ner itself trains


def test_keep_and_rehearse_together_are_refused(base_path):
    with pytest.raises(ValueError, match="choose one"):
        fine_tune(base_path, n_iter=1, keep_original=True, rehearse=True)


def test_keep_without_old_labels_trains_the_ner(caplog):
    nlp = spacy.blank("en")
    with caplog.at_level("WARNING", logger="spacy_ner_trainer"):
        result = train(nlp, NEW_DATA, n_iter=1, keep_original=True)
    assert nlp.pipe_names == ["ner"] and result.kept == []
    assert any("nothing to keep" in r.getMessage() for r in caplog.records)


def test_kept_copy_resumes_exactly_from_a_checkpoint(base_path, tmp_path):
    whole, resumed = whole_and_resumed(base_path, tmp_path, 12, n_iter=2, seed=3, patience=0)
    assert resumed.pipe_names == whole.pipe_names
    assert resumed.get_pipe("ner_new").model.to_bytes() == whole.get_pipe("ner_new").model.to_bytes()
    assert alone(resumed, HELD_TEXTS, COPIES) == all_ents(spacy.load(base_path), HELD_TEXTS)


def test_new_label_margin_raises_the_bar_for_the_copys_new_labels_only(base_path, base):
    from spacy_ner_trainer.checkpoint import load_component_bytes

    texts = [text for text, _ in NEW_DEV]
    free, _ = fine_tune(base_path, new_label_margin=0.0, original_margin=math.inf)
    assert sum(map(len, label_ents(free, texts, NEW))) >= len(texts) // 2
    barred, result = fine_tune(base_path, new_label_margin=1000.0, dev_data=NEW_DEV, original_margin=math.inf)
    assert label_ents(barred, texts, NEW) == [[] for _ in texts]
    # Dev scores, model-best and meta are those of the barred model, which finds no ANIMAL.
    assert result.best_score == 0.0 and all(scores["ents_f"] == 0.0 for scores in result.scores)
    # The copy never predicts the original's FRUIT either: the original finds what it finds alone.
    assert all_ents(barred, texts) == all_ents(base, texts)
    # model-last's weights carry the margin too.
    load_component_bytes(barred, result.last_weights)
    assert label_ents(barred, texts, NEW) == [[] for _ in texts]


def test_confident_pass_at_margin_0_keeps_every_entity_of_the_original(base_path, base):
    """At margin 0 the confident pass is the original itself: its entities are set first, so
    the pipeline keeps all of them, and the copy's ANIMALs only fill the words around them."""
    nlp, _ = fine_tune(base_path, new_label_margin=0.0, original_margin=0.0)
    texts = HELD_TEXTS + NEW_TEXTS + [text for text, _ in NEW_DEV]
    original = all_ents(base, texts)
    assert sum(map(len, original)) >= len(texts) // 2, "too few FRUITs to test"
    both = all_ents(nlp, texts)
    assert [[e for e in doc if e[2] == OLD] for doc in both] == original
    animals = [[e for e in doc if e[2] == NEW] for doc in both]
    assert sum(map(len, animals)) >= len(texts) // 4, "too few ANIMALs to test"
    assert not any(s < f_end and f_start < e for doc, theirs in zip(animals, original)
                   for s, e, _ in doc for f_start, f_end, _ in theirs)


def test_confident_pass_that_is_never_sure_changes_nothing(base_path):
    texts = HELD_TEXTS + NEW_TEXTS + [text for text, _ in NEW_DEV]
    without, _ = fine_tune(base_path, original_margin=math.inf)
    never, result = fine_tune(base_path, original_margin=1e3)
    assert never.pipe_names == ["ner_confident", "ner_new", "ner"] and without.pipe_names == ["ner_new", "ner"]
    assert alone(never, texts, ["ner_new", "ner"]) == [[] for _ in texts]
    assert all_ents(never, texts) == all_ents(without, texts)


@pytest.mark.parametrize("margins", [{"original_margin": -1.0}, {"original_margin": math.nan},
                                     {"new_label_margin": -0.5}])
def test_negative_margins_are_refused(base_path, margins):
    with pytest.raises(ValueError, match="not a margin"):
        fine_tune(base_path, n_iter=1, **margins)


def test_keep_warning_says_what_raw_texts_do(base_path, caplog):
    raw = [text for text, _ in make_data(BASE_TEMPLATES, 20, set(), seed=23)]
    with caplog.at_level("WARNING", logger="spacy_ner_trainer"):
        _, result = fine_tune(base_path, n_iter=1, rehearse_data=raw)
    said = [r.getMessage() for r in caplog.records if "keeping the ner" in r.getMessage()]
    assert len(said) == 1 and "only measure retention" in said[0] and "--rehearse" in said[0]
    assert result.kept == [OLD] and result.rehearsed == [] and result.retention_examples
