"""The command line (`python -m spacy_ner_trainer`), the atomic save, and spaCy's own
`train` driven by a config that uses the registered reader, labels, batcher and callback."""
import json
import os
from pathlib import Path

import pytest
import spacy
import srsly

import spacy_ner_trainer.save
from spacy_ner_trainer import NerCorpus, verify
from spacy_ner_trainer.save import save_pipeline
from pipelines import (NEW_NER_DATA, RECIPE_DATA, RECIPE_ENTS, conll_counts, ents, ncbi_path, recipe_trained,
                       run_cli)


def write_jsonl(path, data):
    path.write_text("".join(json.dumps([text, ann]) + "\n" for text, ann in data), encoding="utf8")
    return path


def entity_lines(text):
    return [line for line in text.splitlines() if line.startswith("Entities")]


def leftovers(directory, name):
    """Anything beside `name` in `directory`: temporary directories a save left behind."""
    return sorted(p.name for p in directory.iterdir() if p.name != name)


# demo


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """`demo --output model`: (returncode, stdout, stderr, the model path)."""
    cwd = tmp_path_factory.mktemp("demo-output")
    code, out, err = run_cli("demo", "--output", "model", cwd=cwd)
    return code, out, err, cwd / "model"


def check_demo_output(out):
    assert "Loading from" in out
    trained, reloaded = out.split("Loading from", 1)
    for section in (trained, reloaded):
        lines = entity_lines(section)
        assert len(lines) == 2
        assert "Shaka Khan" in lines[0] and "PERSON" in lines[0]
        assert "London" in lines[1] and "Berlin" in lines[1] and "LOC" in lines[1]
        assert "PERSON" not in lines[1] and "LOC" not in lines[0]


def test_demo(tmp_path):
    code, out, err = run_cli("demo", cwd=tmp_path)
    assert code == 0, out + err
    check_demo_output(out)
    assert "Traceback" not in err
    assert leftovers(tmp_path, None) == []  # without --output nothing is written here


def test_demo_output_saves_a_loadable_pipeline(demo_model):
    code, out, err, model = demo_model
    assert code == 0, out + err
    check_demo_output(out)
    nlp = spacy.load(model)
    assert nlp.pipe_names == ["ner"]
    for text, expected in RECIPE_ENTS.items():
        assert ents(nlp(text)) == expected
    assert leftovers(model.parent, "model") == []


# train


def test_train_saves(tmp_path):
    data = RECIPE_DATA + NEW_NER_DATA
    write_jsonl(tmp_path / "train.jsonl", data)
    code, out, err = run_cli("train", "train.jsonl", "--output", "out", "-n", "30", cwd=tmp_path)
    assert code == 0, out + err
    assert "Traceback" not in err
    nlp = spacy.load(tmp_path / "out")
    assert nlp.pipe_names == ["ner"]
    labels = {label for _, ann in data for _, _, label in ann["entities"]}
    assert set(nlp.get_pipe("ner").labels) == labels
    # Exit 0 promises recall >= 0.8 (the default) on the training data, after reloading.
    assert verify(nlp, data, round_trip=False).recall >= 0.8
    assert leftovers(tmp_path, "out") == ["train.jsonl"]


def test_train_learn_rate_reaches_the_optimizer(demo_model, tmp_path):
    # At --learn-rate 0 a resumed model's weights come back unchanged.
    model = demo_model[3]
    write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    code, out, err = run_cli("train", "train.jsonl", "--model", str(model), "--learn-rate", "0",
                             "-n", "2", "--output", "out", cwd=tmp_path)
    assert code == 0, out + err
    weights = [spacy.load(path).get_pipe("ner").model.get_ref("lower").get_param("W")
               for path in (model, tmp_path / "out")]
    assert (weights[0] == weights[1]).all()



def test_train_negative_learn_rate_one_line_exit_2(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    code, out, err = run_cli("train", "train.jsonl", "--learn-rate", "-1", "--output", "out", cwd=tmp_path)
    assert code == 2
    assert "learn rate -1.0 is negative" in out + err and "Traceback" not in out + err
    assert not (tmp_path / "out").exists()


@pytest.fixture
def bad_data(tmp_path):
    """A JSONL file whose second record has a span ending inside a token."""
    return write_jsonl(tmp_path / "bad.jsonl", [
        RECIPE_DATA[0],
        ("I like London and Berlin.", {"entities": [(7, 12, "LOC"), (18, 24, "LOC")]}),
    ])


def test_train_bad_data_one_line_exit_2(bad_data, tmp_path):
    code, out, err = run_cli("train", bad_data.name, cwd=tmp_path)
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = [line for line in (out + err).splitlines() if line.strip()]
    located = [line for line in lines if "bad.jsonl:2" in line]
    assert len(located) == 1, lines
    # One line: the file and line, the problem and the fix together.
    assert "Londo" in located[0] and "on_misaligned" in located[0], lines
    assert not any("on_misaligned" in line for line in lines if line is not located[0]), lines


def test_train_bad_data_verbose_shows_traceback(bad_data, tmp_path):
    code, out, err = run_cli("train", bad_data.name, "--verbose", cwd=tmp_path)
    assert code == 2
    assert "Traceback" in err
    assert "bad.jsonl:2" in out + err


def test_train_unknown_model_exit_2(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    code, out, err = run_cli("train", "train.jsonl", "--model", "does-not-exist", cwd=tmp_path)
    assert code == 2
    assert "Traceback" not in err
    assert "does-not-exist" in out + err


def test_train_output_is_a_file_exit_2_before_training(tmp_path):
    write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    (tmp_path / "taken").write_text("not a directory", encoding="utf8")
    code, out, err = run_cli("train", "train.jsonl", "--output", "taken", cwd=tmp_path)
    assert code == 2
    assert "Traceback" not in err
    assert "taken" in out + err
    assert "epoch" not in out  # no training table: it failed before training
    assert (tmp_path / "taken").read_text(encoding="utf8") == "not a directory"
    assert leftovers(tmp_path, "taken") == ["train.jsonl"]


# verify


def test_verify_writes_json(demo_model, tmp_path):
    model = demo_model[3]
    write_jsonl(tmp_path / "gold.jsonl", RECIPE_DATA)
    code, out, err = run_cli("verify", model, "gold.jsonl", "--json", "report.json", cwd=tmp_path)
    assert code == 0, out + err
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf8"))
    assert report["ok"] is True
    assert report["recall"] == 1.0 and report["n_examples"] == 2
    assert set(report["per_label"]) == {"PERSON", "LOC"}


def test_verify_impossible_min_recall_exit_1(demo_model, tmp_path):
    model = demo_model[3]
    write_jsonl(tmp_path / "gold.jsonl", RECIPE_DATA)
    code, out, err = run_cli("verify", model, "gold.jsonl", "--min-recall", "1.01",
                             "--json", "report.json", cwd=tmp_path)
    assert code == 1, out + err
    assert "Traceback" not in err
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf8"))
    assert report["ok"] is False and report["recall"] == 1.0


HELP_OPTIONS = {"train": ["--output", "--model", "--verbose"], "verify": ["--min-recall", "--json"],
                "demo": ["--output"]}


@pytest.mark.parametrize("command", [None, "train", "verify", "demo"])
def test_help(command, tmp_path):
    code, out, err = run_cli(*([command] if command else []), "--help", cwd=tmp_path)
    assert code == 0, err
    assert "Traceback" not in err
    if command is None:
        assert "python -m spacy_ner_trainer [OPTIONS] COMMAND" in out
        for name in HELP_OPTIONS:
            assert name in out
    else:
        assert f"python -m spacy_ner_trainer {command} [OPTIONS]" in out
        for option in HELP_OPTIONS[command]:
            assert option in out


# The atomic save


@pytest.fixture
def saved(tmp_path_factory, tmp_path):
    """A directory holding only `model`: the recipe's pipeline, saved."""
    nlp, _, _ = recipe_trained(tmp_path_factory)
    directory = tmp_path / "models"
    save_pipeline(nlp, directory / "model")
    return directory / "model"


def snapshot(model):
    return {p.relative_to(model).as_posix(): p.read_bytes() for p in model.rglob("*") if p.is_file()}


def check_intact(model, before):
    assert snapshot(model) == before
    nlp = spacy.load(model)
    for text, expected in RECIPE_ENTS.items():
        assert ents(nlp(text)) == expected
    assert leftovers(model.parent, model.name) == []


def other_pipeline():
    nlp = spacy.blank("en")
    nlp.meta["name"] = "other"
    return nlp


def test_save_replaces_an_existing_model(saved):
    save_pipeline(other_pipeline(), saved)
    assert spacy.load(saved).meta["name"] == "other"
    assert spacy.load(saved).pipe_names == []
    assert leftovers(saved.parent, saved.name) == []


def test_failure_inside_to_disk_keeps_the_old_model(saved):
    before = snapshot(saved)
    nlp = other_pipeline()
    real_to_disk = nlp.to_disk

    def to_disk_then_fail(path, **kwargs):
        real_to_disk(path, **kwargs)  # a complete-looking new model is on disk ...
        raise OSError("No space left on device")  # ... and then the write fails

    nlp.to_disk = to_disk_then_fail
    with pytest.raises(OSError, match="No space left"):
        save_pipeline(nlp, saved)
    check_intact(saved, before)


def test_failure_after_some_files_keeps_the_old_model(saved):
    before = snapshot(saved)
    nlp = other_pipeline()

    def half_to_disk(path, **kwargs):
        path = Path(path)
        path.mkdir(parents=True)
        srsly.write_json(path / "meta.json", nlp.meta)
        raise KeyboardInterrupt  # not even an Exception

    nlp.to_disk = half_to_disk
    with pytest.raises(KeyboardInterrupt):
        save_pipeline(nlp, saved)
    check_intact(saved, before)


def test_failure_to_rename_keeps_the_old_model(saved, monkeypatch):
    # The new model is complete, but moving it into place fails: the old one must survive.
    before = snapshot(saved)
    real_replace = os.replace

    def replace(src, dst):
        if Path(src).name == "new":
            raise PermissionError(f"cannot rename {src}")
        return real_replace(src, dst)

    monkeypatch.setattr(spacy_ner_trainer.save.os, "replace", replace)
    with pytest.raises(PermissionError):
        save_pipeline(other_pipeline(), saved)
    monkeypatch.undo()
    check_intact(saved, before)


def test_save_to_a_file_fails_first(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me", encoding="utf8")
    nlp = other_pipeline()
    nlp.to_disk = lambda *a, **k: pytest.fail("to_disk must not be called")
    with pytest.raises(ValueError):
        save_pipeline(nlp, target)
    assert target.read_text(encoding="utf8") == "keep me"
    assert leftovers(tmp_path, "taken") == []


# spaCy's train with the registered pieces

CONFIG = """
[paths]
train = null
dev = null

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["ner"]
batch_size = 256

[components]

[components.ner]
factory = "ner"

[corpora]

[corpora.train]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${paths.train}
limit = 200

[corpora.dev]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${paths.dev}
limit = 100

[training]
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
dropout = 0.2
max_epochs = 0
max_steps = 30
eval_frequency = 15

[training.batcher]
@batchers = "spacy-ner-trainer.shuffled_batches.v1"
buffer_size = 64
seed = 0

[training.batcher.size]
@schedules = "compounding.v1"
start = 4
stop = 32
compound = 1.001

[training.before_to_disk]
@callbacks = "spacy-ner-trainer.verify.v1"
max_examples = 50

[initialize]

[initialize.components]

[initialize.components.ner]

[initialize.components.ner.labels]
@readers = "spacy-ner-trainer.ner_labels.v1"
path = ${paths.train}
"""


@pytest.fixture(scope="module")
def ncbi():
    train_path, dev_path = ncbi_path("train"), ncbi_path("devel")
    if train_path is None or dev_path is None:
        pytest.skip("the NCBI-disease corpus is not available under shared/data/ncbi-disease")
    return train_path, dev_path


@pytest.mark.parametrize("max_epochs", [0, -1], ids=["in-memory", "streamed"])
def test_spacy_train_with_registered_pieces(ncbi, tmp_path, max_epochs):
    from spacy.cli.train import train as spacy_train

    train_path, dev_path = ncbi
    config_path = tmp_path / "config.cfg"
    config_path.write_text(CONFIG, encoding="utf8")
    spacy_train(config_path, tmp_path / "out", overrides={
        "paths.train": str(train_path), "paths.dev": str(dev_path),
        "training.max_epochs": max_epochs,
    })
    _, _, train_ents = conll_counts(train_path, 50)
    _, _, dev_ents = conll_counts(dev_path, 50)
    for name in ("model-best", "model-last"):
        model = tmp_path / "out" / name
        meta = srsly.read_json(model / "meta.json")
        assert "spacy_ner_trainer" in meta, name
        reports = meta["spacy_ner_trainer"]["verify"]
        assert set(reports) == {"train", "dev"}
        for key, expected in (("train", train_ents), ("dev", dev_ents)):
            report = reports[key]
            assert "ok" in report
            assert report["n_examples"] == 50  # max_examples of a 200 / 100 example corpus
            assert {label: s["support"] for label, s in report["per_label"].items()} == expected
        # The report describes the model it ships with.
        nlp = spacy.load(model)
        assert nlp.get_pipe("ner").labels == ("Disease",)
        again = verify(nlp, NerCorpus(dev_path, limit=50), min_recall=0.0, round_trip=False)
        assert reports["dev"]["recall"] == pytest.approx(again.recall)
        assert reports["dev"]["precision"] == pytest.approx(again.precision)
