"""train_pipeline: the output layout (model-best, model-last, metrics.jsonl), what each saved
model's meta.json says about itself, the verification summary, and stopping early."""
import json
import os

import pytest
import spacy
import srsly

from spacy_ner_trainer import NerCorpus, evaluate, train_pipeline
from spacy_ner_trainer.save import MARKER
from spacy_ner_trainer.verify import verify
from pipelines import NEW_NER_DATA, RECIPE_DATA, ncbi_path, saved_base

# At this learn rate the dev F of the averaged weights (on the first training sentences) rises,
# then falls: the best epoch is not the last, so model-best and model-last differ.
N_TRAIN, N_DEV, N_ITER, LEARN_RATE = 50, 20, 4, 0.02
META = {"name": "disease_ner", "version": "1.2.3"}
SCORES = ("ents_p", "ents_r", "ents_f")


@pytest.fixture(scope="module")
def ncbi_train():
    path = ncbi_path("train")
    if path is None:
        pytest.skip("the NCBI-disease corpus is not available under shared/data/ncbi-disease")
    return path


def dev_corpus(path):
    return NerCorpus(path, limit=N_DEV)


@pytest.fixture(scope="module")
def dev_run(ncbi_train, tmp_path_factory):
    """A run with dev data whose best epoch is not its last: (TrainingRun, output directory)."""
    output = tmp_path_factory.mktemp("dev-run") / "out"
    run = train_pipeline(NerCorpus(ncbi_train, limit=N_TRAIN), dev_data=dev_corpus(ncbi_train), output=output,
                         meta=META, n_iter=N_ITER, seed=0, learn_rate=LEARN_RATE, patience=0, average=True)
    result = run.result
    assert result.best_epoch is not None and result.best_epoch < N_ITER, \
        "choose a setup whose best epoch is not the last"
    assert result.scores[result.best_epoch - 1]["ents_f"] > result.scores[-1]["ents_f"]
    return run, output


@pytest.fixture(scope="module")
def no_dev_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("no-dev-run") / "out"
    return train_pipeline(RECIPE_DATA, output=output, n_iter=2, seed=0), output


def metrics(output):
    return list(srsly.read_jsonl(output / "metrics.jsonl"))


def test_layout_with_dev(dev_run):
    run, output = dev_run
    assert set(os.listdir(output)) == {MARKER, "model-best", "model-last", "metrics.jsonl", "checkpoint"}
    assert run.saved == {"model-best": output / "model-best", "model-last": output / "model-last"}
    assert set(srsly.read_json(output / MARKER)["files"]) == {"model-best", "model-last", "metrics.jsonl",
                                                                 "checkpoint"}
    for name in ("model-best", "model-last"):
        assert spacy.load(output / name).pipe_names == ["ner"]


def test_layout_without_dev(no_dev_run):
    run, output = no_dev_run
    assert set(os.listdir(output)) == {MARKER, "model-last", "metrics.jsonl", "checkpoint"}
    assert set(run.saved) == {"model-last"}
    rows = metrics(output)
    assert [row["epoch"] for row in rows] == [1, 2]
    assert all(row["dev"] is None for row in rows)
    assert srsly.read_json(output / "model-last" / "meta.json")["performance"] == {}


def test_metrics_one_row_per_epoch(dev_run):
    run, output = dev_run
    rows = metrics(output)
    assert [row["epoch"] for row in rows] == list(range(1, N_ITER + 1))
    for row, epoch in zip(rows, run.result.epochs):
        assert row["loss"] == pytest.approx(epoch["loss"]) and row["loss"] > 0
        assert row["seconds"] > 0 and row["words_per_second"] > 0
        assert row["words_per_second"] == pytest.approx(row["words"] / row["seconds"])
        assert set(row["dev"]) == {"p", "r", "f", "per_label"}
        assert set(row["dev"]["per_label"]) == {"Disease"}
        assert set(row["dev"]["per_label"]["Disease"]) == {"p", "r", "f"}
    fs = [row["dev"]["f"] for row in rows]
    assert [row["best"] for row in rows] == [f > max(fs[:i], default=-1) for i, f in enumerate(fs)]


def scores_on_dev(model, ncbi_train):
    nlp = spacy.load(model)
    return evaluate(nlp, dev_corpus(ncbi_train)(nlp)).scores


def as_row(scores):
    return {"p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"]}


@pytest.mark.parametrize("name", ["model-best", "model-last"])
def test_saved_model_scores_what_metrics_says(dev_run, ncbi_train, name):
    run, output = dev_run
    rows = metrics(output)
    row = rows[run.result.best_epoch - 1] if name == "model-best" else rows[-1]
    if name == "model-best":
        assert row["best"] and max(r["dev"]["f"] for r in rows) == row["dev"]["f"]
    scores = scores_on_dev(output / name, ncbi_train)
    # metrics.jsonl holds JSON floats, rounded to 10 digits.
    assert as_row(scores) == pytest.approx({k: row["dev"][k] for k in ("p", "r", "f")}, abs=1e-9)
    performance = srsly.read_json(output / name / "meta.json")["performance"]
    assert {k: performance[k] for k in SCORES} == pytest.approx({k: scores[k] for k in SCORES}, abs=1e-9)
    assert set(performance["ents_per_type"]) == {"Disease"}


def test_meta_name_and_version_as_given(dev_run):
    _, output = dev_run
    for name in ("model-best", "model-last"):
        meta = spacy.load(output / name).meta
        assert (meta["name"], meta["version"]) == (META["name"], META["version"])


def test_verify_summary_is_small(dev_run):
    _, output = dev_run
    for name in ("model-best",):
        summary = srsly.read_json(output / name / "meta.json")["spacy_ner_trainer"]["verify"]
        assert set(summary) == {"train", "dev"}
        assert summary["train"]["n_examples"] == N_TRAIN and summary["dev"]["n_examples"] == N_DEV
        # More mismatches than are listed: the summary keeps 20 of them and the count.
        assert summary["train"]["n_mismatches"] > 20
        for part in summary.values():
            assert len(part["mismatches"]) == min(20, part["n_mismatches"])
        assert len(json.dumps(summary)) < 20_000


def test_verify_summary_describes_its_own_model(dev_run, ncbi_train):
    # The verified model (model-best, with dev data) carries the summary; model-last, which
    # was not verified, carries none rather than one that describes another model.
    run, output = dev_run
    summary = srsly.read_json(output / "model-best" / "meta.json")["spacy_ner_trainer"]["verify"]["dev"]
    nlp = spacy.load(output / "model-best")
    again = verify(nlp, dev_corpus(ncbi_train)(nlp), round_trip=False)
    # The dev report is the best epoch's own evaluation, not a second pass, and it is exactly
    # what the saved model-best predicts: the same scores, mismatches and confusion.
    assert run.dev_report.evaluation is run.result.best_evaluation
    assert run.dev_report.summary() == again.summary()
    assert (summary["precision"], summary["recall"]) == pytest.approx((again.precision, again.recall))
    assert summary["n_mismatches"] == len(again.evaluation.mismatches)
    assert run.dev_report.evaluation.confusion == again.evaluation.confusion
    assert "verify" not in srsly.read_json(output / "model-last" / "meta.json")["spacy_ner_trainer"]


def test_dev_report_with_chosen_labels_scores_those(dev_run, ncbi_train, tmp_path):
    # Labels other than the gold ones are scored by a pass of their own, not the epoch's.
    run = train_pipeline(NerCorpus(ncbi_train, limit=N_TRAIN), dev_data=dev_corpus(ncbi_train), n_iter=1,
                         seed=0, labels=["Disease"])
    assert run.dev_report.evaluation is not run.result.best_evaluation
    assert set(run.dev_report.per_label) == {"Disease"}


def test_fine_tuned_base_gets_its_own_name(tmp_path_factory, tmp_path):
    base = spacy.load(saved_base(True, tmp_path_factory))
    base.meta.update({"name": "base_model", "version": "3.1.4"})
    base.to_disk(tmp_path / "base")
    run = train_pipeline(NEW_NER_DATA, model=tmp_path / "base", output=tmp_path / "out", n_iter=1, seed=0)
    meta = srsly.read_json(tmp_path / "out" / "model-last" / "meta.json")
    assert meta["name"] != "base_model" and meta["version"] != "3.1.4"
    assert meta["spacy_ner_trainer"]["base"] == {"lang": "en", "name": "base_model", "version": "3.1.4"}
    assert run.meta["name"] == meta["name"]


def test_patience_stops_when_dev_f_plateaus():
    # At learn rate 0 the weights, and so the dev F, never change: epoch 1 stays the best, and
    # after `patience` epochs without an improvement training stops.
    run = train_pipeline(RECIPE_DATA, dev_data=RECIPE_DATA, n_iter=10, patience=2, learn_rate=0.0, seed=0)
    result = run.result
    assert len({s["ents_f"] for s in result.scores}) == 1
    assert result.stopped_early
    assert result.best_epoch == 1
    assert len(result.epochs) == 3 < 10


def test_no_patience_runs_every_epoch():
    run = train_pipeline(RECIPE_DATA, dev_data=RECIPE_DATA, n_iter=4, patience=0, learn_rate=0.0, seed=0)
    assert not run.result.stopped_early and len(run.result.epochs) == 4
