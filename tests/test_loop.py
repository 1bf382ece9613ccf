"""train(): the data it takes, what it returns, the recipe's result, determinism, and that
training ner leaves the other components of a pipeline with a shared tok2vec alone."""
import json

import pytest
import spacy
from spacy.training import Example
from spacy.util import compounding, registry
from thinc.api import Config

import spacy_ner_trainer
from spacy_ner_trainer import NerCorpus, TrainResult, shuffled_batches_v1, train, verify
from spacy_ner_trainer.loop import FINE_TUNE_LEARN_RATE
from pipelines import (
    HELD_TEXTS,
    NEW_NER_DATA,
    RECIPE_DATA,
    RECIPE_ENTS,
    conll_counts,
    ents,
    ncbi_path,
    recipe_trained,
    saved_base,
    syntax_view,
)

ALL_DATA = RECIPE_DATA + NEW_NER_DATA


def gold_counts(data):
    counts = {}
    for _, annotations in data:
        for _, _, label in annotations["entities"]:
            counts[label] = counts.get(label, 0) + 1
    return counts


def predicted_spans(nlp, texts):
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def gold_spans(data):
    return [sorted(tuple(e) for e in annotations["entities"]) for _, annotations in data]


@pytest.fixture(scope="module")
def recipe(tmp_path_factory):
    return recipe_trained(tmp_path_factory)


@pytest.fixture(scope="module")
def base_path(tmp_path_factory):
    """tok2vec + tagger + parser; tagger and parser listen to tok2vec."""
    return saved_base(False, tmp_path_factory)


@pytest.fixture(scope="module")
def base_ner_path(tmp_path_factory):
    """tok2vec + tagger + parser + ner; all three listen to tok2vec."""
    return saved_base(True, tmp_path_factory)


# The recipe


def test_recipe_sentences_recognized_after_training(recipe):
    nlp, result, _ = recipe
    assert nlp.pipe_names == ["ner"]
    assert isinstance(result, TrainResult)
    assert not result.resumed
    assert len(result.losses) == 100
    for text, expected in RECIPE_ENTS.items():
        assert ents(nlp(text)) == expected


def test_recipe_sentences_recognized_after_reload(recipe):
    _, _, path = recipe
    reloaded = spacy.load(path)
    assert reloaded.pipe_names == ["ner"]
    assert set(reloaded.get_pipe("ner").labels) == {"PERSON", "LOC"}
    for text, expected in RECIPE_ENTS.items():
        assert ents(reloaded(text)) == expected


def test_recipe_result_counts_labels_and_words(recipe):
    _, result, _ = recipe
    assert result.labels == gold_counts(RECIPE_DATA)
    words = sum(len(spacy.blank("en")(text)) for text, _ in RECIPE_DATA)
    assert result.n_words == 100 * words
    # The loss falls: the last epochs are far below the first.
    assert sum(result.losses[-10:]) < 0.1 * sum(result.losses[:10])
    as_dict = result.to_dict()
    json.dumps(as_dict)
    assert as_dict["labels"] == result.labels and as_dict["losses"] == result.losses


# What train() takes


def test_adds_ner_and_collects_labels_from_seed_tuples():
    nlp = spacy.blank("en")
    result = train(nlp, ALL_DATA, n_iter=25, dropout=0.2, seed=0)
    assert nlp.pipe_names == ["ner"]
    assert result.labels == gold_counts(ALL_DATA)
    assert set(nlp.get_pipe("ner").labels) == set(gold_counts(ALL_DATA))
    assert predicted_spans(nlp, [t for t, _ in ALL_DATA]) == gold_spans(ALL_DATA)


def test_takes_examples():
    nlp = spacy.blank("en")
    examples = [Example.from_dict(nlp.make_doc(text), ann) for text, ann in ALL_DATA]
    result = train(nlp, examples, n_iter=25, seed=0)
    assert result.labels == gold_counts(ALL_DATA)
    assert predicted_spans(nlp, [t for t, _ in ALL_DATA]) == gold_spans(ALL_DATA)


def test_takes_examples_and_tuples_alike():
    # The same data as Examples and as seed tuples trains the same model.
    a, b = spacy.blank("en"), spacy.blank("en")
    result_a = train(a, ALL_DATA, n_iter=5, seed=3)
    result_b = train(b, [Example.from_dict(b.make_doc(t), ann) for t, ann in ALL_DATA], n_iter=5, seed=3)
    assert result_a.losses == result_b.losses


def registered_corpus(path):
    return registry.readers.get("spacy-ner-trainer.NerCorpus.v1")(path)


@pytest.mark.parametrize("as_type", [str, lambda p: p, NerCorpus, registered_corpus],
                         ids=["str", "Path", "NerCorpus", "NerCorpus.v1"])
def test_takes_a_path_or_a_corpus(tmp_path, as_type):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps([t, ann]) + "\n" for t, ann in ALL_DATA), encoding="utf8")
    nlp = spacy.blank("en")
    result = train(nlp, as_type(path), n_iter=25, seed=0)
    assert result.labels == gold_counts(ALL_DATA)
    assert predicted_spans(nlp, [t for t, _ in ALL_DATA]) == gold_spans(ALL_DATA)


def test_no_entities_is_an_error():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError):
        train(nlp, [("No entities here.", {"entities": []})], n_iter=1)


def test_bad_span_names_the_record():
    nlp = spacy.blank("en")
    data = RECIPE_DATA + [("I like London.", {"entities": [(7, 12, "LOC")]})]
    with pytest.raises(spacy_ner_trainer.NerDataError) as info:
        train(nlp, data, n_iter=1)
    assert info.value.line == 3


# Epochs, dev scores, on_epoch


@pytest.fixture(scope="module")
def ncbi():
    train_path, dev_path = ncbi_path("train"), ncbi_path("devel")
    if train_path is None or dev_path is None:
        pytest.skip("the NCBI-disease corpus is not available under shared/data/ncbi-disease")
    return train_path, dev_path


@pytest.mark.parametrize("buffer_size", [0, 16], ids=["in-memory", "streamed"])
def test_real_corpus_with_dev_scores_and_on_epoch(ncbi, buffer_size):
    train_path, dev_path = ncbi
    n_train, n_dev = 60, 30
    _, train_tokens, train_ents = conll_counts(train_path, n_train)
    calls = []
    nlp = spacy.blank("en")
    result = train(
        nlp,
        NerCorpus(train_path, limit=n_train),
        dev_data=NerCorpus(dev_path, limit=n_dev),
        n_iter=3,
        dropout=0.2,
        batch_size=8,
        seed=0,
        buffer_size=buffer_size,
        patience=0,
        on_epoch=calls.append,
    )
    assert result.labels == train_ents
    # Every epoch saw every training example exactly once (also through the shuffle buffer).
    assert result.n_words == 3 * train_tokens
    assert len(result.losses) == 3 and all(loss > 0 for loss in result.losses)
    assert len(result.scores) == 3
    assert calls == result.epochs
    assert [row["epoch"] for row in calls] == [1, 2, 3]
    assert [row["loss"] for row in calls] == result.losses
    assert [row["dev"]["f"] for row in calls] == [s["ents_f"] for s in result.scores]
    assert sum(row["words"] for row in calls) == result.n_words
    for scores in result.scores:
        for key in ("ents_p", "ents_r", "ents_f"):
            assert 0.0 <= scores[key] <= 1.0
    # The pipeline holds the best epoch, and its scores are what verify finds on the same data.
    f_scores = [s["ents_f"] for s in result.scores]
    assert result.best_score == max(f_scores)
    assert result.best_epoch == f_scores.index(max(f_scores)) + 1
    assert [row["best"] for row in calls].count(True) >= 1
    report = verify(nlp, NerCorpus(dev_path, limit=n_dev), min_recall=0.0, round_trip=False)
    assert report.n_examples == n_dev
    best = result.scores[result.best_epoch - 1]
    assert best["ents_r"] == pytest.approx(report.recall)
    assert best["ents_p"] == pytest.approx(report.precision)


def test_no_dev_data_no_scores():
    calls = []
    result = train(spacy.blank("en"), RECIPE_DATA, n_iter=4, seed=0,
                   on_epoch=lambda *args: calls.append(args))
    assert result.scores == []
    assert len(calls) == 4 == len(result.losses)
    assert [(row["epoch"], row["dev"]) for (row,) in calls] == [(i, None) for i in range(1, 5)]
    assert result.best_epoch is None


# Resuming


def test_existing_ner_resumes_and_gains_new_labels(recipe):
    _, _, path = recipe
    nlp = spacy.load(path)
    ner = nlp.get_pipe("ner")
    assert set(ner.labels) == {"PERSON", "LOC"}
    result = train(nlp, ALL_DATA, n_iter=25, seed=0, learn_rate=0.001)
    assert result.resumed
    assert nlp.pipe_names == ["ner"]
    assert set(ner.labels) == {"PERSON", "LOC", "FRUIT", "GPE"}
    assert predicted_spans(nlp, [t for t, _ in ALL_DATA]) == gold_spans(ALL_DATA)


def test_resumed_training_keeps_the_weights(recipe):
    # Resuming starts from the trained model: one epoch at dropout 0 on the data it already
    # knows costs (almost) nothing, whereas a new ner starts with a large loss.
    _, recipe_result, path = recipe
    nlp = spacy.load(path)
    resumed = train(nlp, RECIPE_DATA, n_iter=1, dropout=0.0, seed=0)
    fresh = train(spacy.blank("en"), RECIPE_DATA, n_iter=1, dropout=0.0, seed=0)
    assert resumed.resumed and not fresh.resumed
    assert resumed.losses[0] < 0.1 * fresh.losses[0]


def test_learn_rate_sets_the_optimizer_rate(recipe):
    # At learn rate 0 a resumed ner's weights do not move; at the default they do.
    _, _, path = recipe
    weights = {}
    for learn_rate in (0.0, None):
        nlp = spacy.load(path)
        before = nlp.get_pipe("ner").model.get_ref("lower").get_param("W").copy()
        result = train(nlp, ALL_DATA, n_iter=1, seed=0, learn_rate=learn_rate)
        weights[learn_rate] = (before, nlp.get_pipe("ner").model.get_ref("lower").get_param("W"))
        assert result.learn_rate == (0.0 if learn_rate == 0.0 else FINE_TUNE_LEARN_RATE)  # resumed: 3e-4
    assert (weights[0.0][0] == weights[0.0][1]).all()
    assert not (weights[None][0] == weights[None][1]).all()
    assert train(spacy.blank("en"), ALL_DATA, n_iter=1, seed=0).learn_rate == 0.001  # a new ner: Adam's



def test_a_new_ner_keeps_the_averaged_weights_and_a_resumed_one_its_own(recipe):
    """average=None: the optimizer's moving averages for a new ner (what is scored and kept),
    the weights themselves for a trained one (fine-tuning); with and without averages the same
    run ends elsewhere."""
    _, _, path = recipe

    def weights(nlp, **kwargs):
        train(nlp, ALL_DATA, n_iter=3, seed=0, **kwargs)
        return nlp.get_pipe("ner").model.to_bytes()

    new = {average: weights(spacy.blank("en"), average=average) for average in (None, True, False)}
    assert new[None] == new[True] != new[False]
    resumed = {average: weights(spacy.load(path), average=average) for average in (None, True, False)}
    assert resumed[None] == resumed[False] != resumed[True]


def test_a_new_ner_with_dev_data_keeps_the_better_of_its_weights_and_their_averages(ncbi):
    # Averages do not change the training itself, so the runs with average=True and False go
    # through the same weights; left to the default, every epoch scores both and keeps the better.
    train_path, dev_path = ncbi
    kwargs = dict(dev_data=NerCorpus(dev_path, limit=30), n_iter=3, seed=0, patience=0, learn_rate=0.01)
    runs = {average: train(spacy.blank("en"), NerCorpus(train_path, limit=60), average=average, **kwargs)
            for average in (None, True, False)}
    both = zip(runs[True].scores, runs[False].scores, runs[None].epochs, strict=True)
    for averaged, own, row in both:
        assert row["dev"]["f"] == max(averaged["ents_f"], own["ents_f"])
        assert row["averaged"] == (averaged["ents_f"] >= own["ents_f"])
    assert {row["averaged"] for row in runs[None].epochs} == {True, False}, "choose a setup where each wins once"
    assert [row["averaged"] for row in runs[True].epochs] == [True] * 3
    assert [row["averaged"] for row in runs[False].epochs] == [False] * 3
    assert runs[None].best_score == max(runs[True].best_score, runs[False].best_score)


def test_defaults_for_a_new_ner_and_for_fine_tuning(recipe, monkeypatch):
    # A new ner: dropout 0.1, batches in words from WORDS_MIN_EXAMPLES examples (the 8 sentences
    # then make one batch of under 100 words: one update an epoch), in examples below it (4 + 4);
    # a trained ner is fine-tuned at 0.2 in examples, as bench_forgetting measured.
    _, _, path = recipe
    updates = []

    def counted(nlp):
        update = nlp.update
        nlp.update = lambda *args, **kwargs: updates.append(1) or update(*args, **kwargs)
        return nlp

    small = train(counted(spacy.blank("en")), ALL_DATA, n_iter=1, seed=0)
    assert (small.dropout, small.batch_unit, len(updates)) == (0.1, "examples", 2)
    monkeypatch.setattr(spacy_ner_trainer.loop, "WORDS_MIN_EXAMPLES", len(ALL_DATA))
    updates.clear()
    words = train(counted(spacy.blank("en")), ALL_DATA, n_iter=1, seed=0)
    assert (words.dropout, words.batch_unit, len(updates)) == (0.1, "words", 1)
    fine_tuned = train(spacy.load(path), ALL_DATA, n_iter=1, seed=0)
    assert (fine_tuned.resumed, fine_tuned.dropout, fine_tuned.batch_unit) == (True, 0.2, "examples")
    assert train(spacy.blank("en"), ALL_DATA, n_iter=1, seed=0, batch_size=4).batch_unit == "examples"


def test_a_new_ner_has_the_model_spacy_init_config_writes():
    # NEW_NER_MODEL is spaCy's efficiency ner with its tok2vec inside: a new spaCy that changes
    # those defaults shows here.
    from spacy.cli.init_config import init_config
    from spacy_ner_trainer.pipeline import NEW_NER_MODEL
    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency").interpolate()
    expected = {**config["components"]["ner"]["model"], "tok2vec": config["components"]["tok2vec"]["model"]}
    assert NEW_NER_MODEL == expected
    nlp = spacy.blank("en")
    train(nlp, RECIPE_DATA, n_iter=1, seed=0)
    assert nlp.config["components"]["ner"]["model"] == expected
    tables = [node.get_dim("nV") for node in nlp.get_pipe("ner").model.walk() if node.name == "hashembed"]
    assert tables == [5000, 1000, 2500, 2500]


@pytest.mark.parametrize("option,value,message", [("learn_rate", -0.001, "learn rate -0.001 is negative"),
                                                   ("dropout", 1.0, "dropout 1.0 is not a rate"),
                                                   ("dropout", -0.1, "dropout -0.1 is not a rate")])
def test_bad_rates_are_refused_before_training(option, value, message):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=message):
        train(nlp, RECIPE_DATA, n_iter=1, **{option: value})
    assert "ner" not in nlp.pipe_names  # refused before anything changed


# Determinism


def run_seeded(seed, n_iter=8):
    nlp = spacy.blank("en")
    result = train(nlp, ALL_DATA, n_iter=n_iter, dropout=0.5, seed=seed)
    texts = [t for t, _ in ALL_DATA] + HELD_TEXTS
    # Scores, not just entities: identical weights give identical scores.
    docs = list(nlp.pipe(texts))
    return result.losses, [[(e.start, e.end, e.label_) for e in d.ents] for d in docs], nlp


def test_same_seed_same_model():
    losses_a, ents_a, nlp_a = run_seeded(0)
    losses_b, ents_b, nlp_b = run_seeded(0)
    assert losses_a == losses_b
    assert ents_a == ents_b
    assert nlp_a.get_pipe("ner").to_bytes() == nlp_b.get_pipe("ner").to_bytes()


def test_different_seed_different_losses():
    losses_a, _, _ = run_seeded(0)
    losses_b, _, _ = run_seeded(1)
    assert losses_a != losses_b


# A pipeline whose tagger and parser listen to a shared tok2vec


def check_syntax_is_meaningful(view):
    # The base pipeline must predict something, or "unchanged" would prove nothing.
    tags = {t[1] for doc in view for t in doc}
    deps = {t[2] for doc in view for t in doc}
    assert {"NNP", "VBZ"} <= tags and len(tags) >= 4
    assert "ROOT" in deps and len(deps) >= 3


def test_base_pipeline_listens(base_path, base_ner_path):
    nlp = spacy.load(base_path)
    assert nlp.pipe_names == ["tok2vec", "tagger", "parser"]
    assert set(nlp.get_pipe("tok2vec").listening_components) == {"tagger", "parser"}
    check_syntax_is_meaningful(syntax_view(nlp))
    nlp = spacy.load(base_ner_path)
    assert nlp.pipe_names == ["tok2vec", "tagger", "parser", "ner"]
    assert set(nlp.get_pipe("tok2vec").listening_components) == {"tagger", "parser", "ner"}


def test_new_ner_leaves_listening_tagger_and_parser_unchanged(base_path, tmp_path):
    nlp = spacy.load(base_path)
    before = syntax_view(nlp)
    result = train(nlp, NEW_NER_DATA, n_iter=20, seed=0)
    assert not result.resumed
    assert nlp.pipe_names == ["tok2vec", "tagger", "parser", "ner"]
    assert syntax_view(nlp) == before
    assert predicted_spans(nlp, [t for t, _ in NEW_NER_DATA]) == gold_spans(NEW_NER_DATA)
    # And so after saving and loading.
    nlp.to_disk(tmp_path / "trained")
    reloaded = spacy.load(tmp_path / "trained")
    assert syntax_view(reloaded) == before
    assert predicted_spans(reloaded, [t for t, _ in NEW_NER_DATA]) == gold_spans(NEW_NER_DATA)
    report = verify(nlp, NEW_NER_DATA, reference=spacy.load(base_path))
    assert report.components_ok is True
    assert report.component_diffs == []
    assert report.round_trip_ok is True
    assert report.ok


def test_resumed_listening_ner_leaves_tagger_and_parser_unchanged(base_ner_path, tmp_path):
    nlp = spacy.load(base_ner_path)
    before = syntax_view(nlp)
    result = train(nlp, NEW_NER_DATA, n_iter=20, seed=0)
    assert result.resumed
    assert syntax_view(nlp) == before
    # ner still works, and has learnt the new label.
    assert "FRUIT" in nlp.get_pipe("ner").labels
    assert predicted_spans(nlp, [t for t, _ in NEW_NER_DATA]) == gold_spans(NEW_NER_DATA)
    nlp.to_disk(tmp_path / "trained")
    reloaded = spacy.load(tmp_path / "trained")
    assert syntax_view(reloaded) == before
    assert predicted_spans(reloaded, [t for t, _ in NEW_NER_DATA]) == gold_spans(NEW_NER_DATA)
    report = verify(nlp, NEW_NER_DATA, reference=spacy.load(base_ner_path))
    assert report.components_ok is True
    assert report.round_trip_ok is True
    assert report.ok


def test_verify_catches_a_changed_tagger(base_path):
    nlp = spacy.load(base_path)
    train(nlp, NEW_NER_DATA, n_iter=10, seed=0)
    reference = spacy.load(base_path)
    texts = [t for t, _ in NEW_NER_DATA]
    # Deliberately change the tagger: teach it that every token is an adjective.
    docs = [nlp.make_doc(t) for t in texts]
    wrong = [Example.from_dict(d, {"tags": ["JJ"] * len(d)}) for d in docs]
    with nlp.select_pipes(enable=["tok2vec", "tagger"]):
        optimizer = nlp.resume_training()
        for _ in range(10):
            nlp.update(wrong, sgd=optimizer)
    assert syntax_view(nlp, texts) != syntax_view(reference, texts)  # the change shows
    report = verify(nlp, NEW_NER_DATA, reference=reference, min_recall=0.0)
    assert report.components_ok is False
    assert report.component_diffs
    assert {d["text"] for d in report.component_diffs} <= set(texts)
    assert not report.ok
    assert report.to_dict()["components_ok"] is False


# The registered batcher, spacy-ner-trainer.shuffled_batches.v1

BATCHER_CONFIG = """
[batcher]
@batchers = "spacy-ner-trainer.shuffled_batches.v1"
buffer_size = {buffer_size}
seed = {seed}

[batcher.size]
@schedules = "compounding.v1"
start = 4
stop = 32
compound = 1.5
"""


def make_batcher(buffer_size, seed=0):
    """The batcher as spaCy resolves it from a [training.batcher] block."""
    config = Config().from_str(BATCHER_CONFIG.format(buffer_size=buffer_size, seed=seed))
    return registry.resolve(config)["batcher"]


def schedule_sizes(n):
    """The batch sizes compounding(4, 32, 1.5) gives for n items: the last one takes the rest."""
    sizes = []
    for size in compounding(4.0, 32.0, 1.5):
        if n <= 0:
            return sizes
        sizes.append(min(int(size), n))
        n -= sizes[-1]


def flat(batches):
    return [item for batch in batches for item in batch]


@pytest.mark.parametrize("buffer_size", [0, 10, 100, 1000])
def test_batcher_yields_every_item_once_per_call(buffer_size):
    items = list(range(100))
    batcher = make_batcher(buffer_size)
    first = list(batcher(items))
    assert [len(b) for b in first] == schedule_sizes(100)
    assert len(first[0]) == 4 and len(first[1]) == 6
    assert sorted(flat(first)) == items
    assert flat(first) != items  # shuffled
    second = list(batcher(iter(items)))
    assert sorted(flat(second)) == items
    assert flat(second) != flat(first)  # shuffled anew every epoch


@pytest.mark.parametrize("buffer_size", [0, 10])
def test_batcher_is_reproducible(buffer_size):
    items = list(range(100))
    a, b, c = make_batcher(buffer_size, seed=3), make_batcher(buffer_size, seed=3), make_batcher(buffer_size, seed=4)
    epochs_a = [list(a(items)) for _ in range(2)]
    epochs_b = [list(b(items)) for _ in range(2)]
    assert epochs_a == epochs_b
    assert flat(list(c(items))) != flat(epochs_a[0])


def test_batcher_default_size_starts_at_4():
    batches = list(shuffled_batches_v1(buffer_size=0, seed=0)(list(range(50))))
    assert len(batches[0]) == 4
    assert sorted(flat(batches)) == list(range(50))


def test_batcher_streams_through_its_buffer():
    buffer_size, total = 16, 1000
    consumed = 0

    def stream():
        nonlocal consumed
        for i in range(total):
            consumed += 1
            yield i

    batches = iter(make_batcher(buffer_size)(stream()))
    first = next(batches)
    assert len(first) == 4
    # Only the buffer and the batch were read; the rest of the stream is untouched.
    assert consumed <= buffer_size + len(first)
    rest = flat(batches)
    assert consumed == total
    assert sorted(first + rest) == list(range(total))
    assert first + rest != list(range(total))


def test_batcher_without_buffer_reads_the_whole_epoch():
    # buffer_size = 0 shuffles the whole epoch in memory, as documented.
    consumed = 0

    def stream():
        nonlocal consumed
        for i in range(100):
            consumed += 1
            yield i

    first = next(iter(make_batcher(0)(stream())))
    assert len(first) == 4 and consumed == 100


def test_streamed_corpus_shuffles_records_before_they_become_examples(ncbi, monkeypatch, tmp_path):
    """A streamed NerCorpus is shuffled as records (a buffer of raw annotations, not of
    Examples, which weigh far more): each epoch's examples are made in the shuffled order,
    every one exactly once."""
    import spacy_ner_trainer.loop as loop_module

    train_path, _ = ncbi
    lines = []
    for eg in NerCorpus(train_path, limit=120)(spacy.blank("en")):
        spans = [{"start": e.start_char, "end": e.end_char, "label": e.label_} for e in eg.reference.ents]
        lines.append(json.dumps({"text": eg.reference.text, "spans": spans}))
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf8")
    texts = [json.loads(line)["text"] for line in lines]
    buffered = []
    real = loop_module.buffer_shuffle

    def spy(items, rng, buffer_size):
        for item in real(items, rng, buffer_size):
            buffered.append(type(item).__name__)
            yield item

    monkeypatch.setattr(loop_module, "buffer_shuffle", spy)
    nlp = spacy.blank("en")
    seen = []
    update = nlp.update

    def recording(examples, *args, **kwargs):
        seen.extend(eg.reference.text for eg in examples)
        return update(examples, *args, **kwargs)

    nlp.update = recording  # type: ignore[method-assign]
    train(nlp, NerCorpus(path), n_iter=2, buffer_size=16, seed=0, patience=0)
    assert len(buffered) == 2 * len(texts) and set(buffered) == {"Record"}
    first, second = seen[:len(texts)], seen[len(texts):]
    assert sorted(first) == sorted(texts) and sorted(second) == sorted(texts)
    assert first != texts and second != first
