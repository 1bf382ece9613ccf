"""The command line, in process (typer's CliRunner): demo, train, verify, evaluate, options
and errors. Subprocesses are used only where the process is the point (tests/test_checkpoint.py,
tests/test_spacy_cli.py)."""
import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_ner_trainer import __version__, verify
from spacy_ner_trainer.cli import app
from pipelines import ANSI, NEW_NER_DATA, RECIPE_DATA, RECIPE_ENTS, ents

runner = CliRunner()


def cli(*args):
    """(exit code, output with colours removed)."""
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, ANSI.sub("", result.output)


def write_jsonl(path, data):
    path.write_text("".join(json.dumps([text, ann]) + "\n" for text, ann in data), encoding="utf8")
    return path


def entity_lines(text):
    return [line for line in text.splitlines() if line.startswith("Entities")]


# demo


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    """`demo --output DIR`: (exit code, output, DIR/model-last)."""
    out = tmp_path_factory.mktemp("demo-output") / "demo"
    code, output = cli("demo", "--output", out)
    return code, output, out / "model-last"


def check_demo_output(out):
    assert "Loading from" in out
    trained, reloaded = out.split("Loading from", 1)
    for section in (trained, reloaded):
        lines = entity_lines(section)
        assert len(lines) == 2
        assert "Shaka Khan" in lines[0] and "PERSON" in lines[0]
        assert "London" in lines[1] and "Berlin" in lines[1] and "LOC" in lines[1]
        assert "PERSON" not in lines[1] and "LOC" not in lines[0]


def test_demo_output_saves_a_loadable_pipeline(demo_model):
    code, out, model = demo_model
    assert code == 0, out
    check_demo_output(out)
    nlp = spacy.load(model)
    assert nlp.pipe_names == ["ner"]
    for text, expected in RECIPE_ENTS.items():
        assert ents(nlp(text)) == expected
    # Without dev data there is no best epoch to pick: only model-last.
    assert sorted(p.name for p in model.parent.iterdir()) == [
        ".spacy-ner-trainer.json", "checkpoint", "metrics.jsonl", "model-last"]


def test_demo_without_output_writes_nothing_here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = cli("demo")
    assert code == 0, out
    check_demo_output(out)
    assert list(tmp_path.iterdir()) == []


# train


def test_train_writes_model_best_and_model_last(tmp_path):
    data = RECIPE_DATA + NEW_NER_DATA
    train = write_jsonl(tmp_path / "train.jsonl", data)
    code, out = cli("train", train, "--dev", train, "--output", tmp_path / "out", "-n", "12", "--patience", "0")
    assert code == 0, out
    assert "Best epoch" in out and "Saved model-best" in out and "Saved model-last" in out
    nlp = spacy.load(tmp_path / "out" / "model-best")
    assert nlp.pipe_names == ["ner"]
    labels = {label for _, ann in data for _, _, label in ann["entities"]}
    assert set(nlp.get_pipe("ner").labels) == labels
    rows = [json.loads(line) for line in (tmp_path / "out" / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == list(range(1, 13))
    best = max(rows, key=lambda row: row["dev"]["f"])
    assert verify(nlp, data, round_trip=False).f == pytest.approx(best["dev"]["f"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "train.jsonl"]


def test_train_that_finds_no_dev_entity_says_what_to_try(tmp_path):
    # At learn rate 0 a new ner learns nothing: dev F stays 0 and patience stops the run.
    train = write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    code, out = cli("train", train, "--dev", train, "--output", tmp_path / "out", "-n", "5", "--patience", "1",
                    "--learn-rate", "0", "--min-recall", "0")
    assert code == 0, out
    said = " ".join(out.split())
    assert "dev F 0.000 (stopped early" in said and "finds none of the dev entities yet" in said
    assert "--n-iter" in said and "--patience 0" in said and "--new-label-margin" not in said


def test_train_learn_rate_reaches_the_optimizer(demo_model, tmp_path):
    # At --learn-rate 0 a resumed model's weights come back unchanged.
    model = demo_model[2]
    train = write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    code, out = cli("train", train, "--model", model, "--learn-rate", "0", "-n", "2", "--output", tmp_path / "out")
    assert code == 0, out
    weights = [spacy.load(path).get_pipe("ner").model.get_ref("lower").get_param("W")
               for path in (model, tmp_path / "out" / "model-last")]
    assert (weights[0] == weights[1]).all()


@pytest.mark.parametrize("args, message", [
    (["--learn-rate", "-1"], "learn rate -1.0 is negative"),
    (["--dropout", "1.5"], "dropout 1.5 is not a rate"),
    (["--patience", "-2"], "patience -2 is negative"),
    (["--label-map", "per"], "--label-map 'per'"),
])
def test_train_bad_settings_one_line_exit_2(tmp_path, args, message):
    train = write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    code, out = cli("train", train, *args, "--output", tmp_path / "out")
    assert code == 2, out
    assert message in out and "Traceback" not in out
    assert len([line for line in out.splitlines() if line.startswith("✘")]) == 1


@pytest.fixture
def bad_data(tmp_path):
    """A JSONL file whose second record has a span ending inside a token."""
    return write_jsonl(tmp_path / "bad.jsonl", [
        RECIPE_DATA[0],
        ("I like London and Berlin.", {"entities": [(7, 12, "LOC"), (18, 24, "LOC")]}),
    ])


def test_train_bad_data_one_line_exit_2(bad_data):
    code, out = cli("train", bad_data)
    assert code == 2
    assert "Traceback" not in out
    lines = [line for line in out.splitlines() if line.strip()]
    located = [line for line in lines if "bad.jsonl:2" in line]
    assert len(located) == 1, lines
    # One line: the file and line, the problem and the fix together.
    assert "Londo" in located[0] and "on_misaligned" in located[0], lines


def test_the_fix_an_error_names_is_an_option_that_works(bad_data, tmp_path):
    code, out = cli("train", bad_data, "--on-misaligned", "expand", "-n", "2", "--output", tmp_path / "out")
    assert code == 0, out
    assert (tmp_path / "out" / "model-last" / "meta.json").exists()


def test_verbose_shows_the_traceback(bad_data, capsys):
    code, out = cli("--verbose", "train", bad_data)
    assert code == 2
    assert "bad.jsonl:2" in out


def test_a_bug_is_not_disguised_as_a_data_error(tmp_path, monkeypatch):
    # Only data and I/O errors become one line and exit 2: anything else propagates.
    import spacy_ner_trainer.cli.train as train_module

    def broken(*args, **kwargs):
        raise KeyError("ner")

    monkeypatch.setattr(train_module, "train_pipeline", broken)
    train = write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    with pytest.raises(KeyError):
        cli("train", train)


def test_train_unknown_model_exit_2(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA)
    code, out = cli("train", train, "--model", "does-not-exist")
    assert code == 2
    assert "does-not-exist" in out


def test_train_labels_filter_and_label_map(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", RECIPE_DATA + NEW_NER_DATA)
    code, out = cli("train", train, "--labels", "FRUIT,PER", "--label-map", "PERSON=PER", "-n", "3",
                    "--output", tmp_path / "out")
    assert code == 0, out
    nlp = spacy.load(tmp_path / "out" / "model-last")
    assert set(nlp.get_pipe("ner").labels) == {"FRUIT", "PER"}


# verify and evaluate


def test_verify_writes_json(demo_model, tmp_path):
    model = demo_model[2]
    gold = write_jsonl(tmp_path / "gold.jsonl", RECIPE_DATA)
    code, out = cli("verify", model, gold, "--json", tmp_path / "report.json")
    assert code == 0, out
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf8"))
    assert report["ok"] is True and report["failures"] == []
    assert report["recall"] == 1.0 and report["n_examples"] == 2
    assert set(report["per_label"]) == {"PERSON", "LOC"}


def test_verify_failed_check_says_which_and_why(demo_model, tmp_path):
    model = demo_model[2]
    gold = write_jsonl(tmp_path / "gold.jsonl", RECIPE_DATA)
    code, out = cli("verify", model, gold, "--min-recall", "1.01", "--json", tmp_path / "report.json")
    assert code == 1, out
    failed = [line for line in out.splitlines() if line.startswith("✘")]
    assert len(failed) == 1
    assert "recall" in failed[0] and "gold.jsonl" in failed[0] and "1.000" in failed[0] and "1.01" in failed[0]
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf8"))
    assert report["ok"] is False and report["recall"] == 1.0


def test_evaluate_scores_only_gold_labels(demo_model, tmp_path):
    # Gold data with PERSON only: the model's LOC predictions are listed apart, not counted
    # against precision.
    model = demo_model[2]
    gold = write_jsonl(tmp_path / "gold.jsonl", [
        ("Who is Shaka Khan?", {"entities": [(7, 17, "PERSON")]}),
        ("I like London and Berlin.", {"entities": []}),
    ])
    code, out = cli("evaluate", model, gold, "--json", tmp_path / "scores.json")
    assert code == 0, out
    scores = json.loads((tmp_path / "scores.json").read_text(encoding="utf8"))
    assert scores["precision"] == 1.0 and scores["recall"] == 1.0
    assert set(scores["per_label"]) == {"PERSON"}
    assert scores["unscored"] == {"LOC": 2}
    assert "not scored" in out and "LOC 2" in out
    # Partial-match scores under their SemEval scheme names, overall and per label.
    for scheme in ("strict", "exact", "partial", "type"):
        assert scores[scheme]["correct"] == 1 and scores[scheme]["spurious"] == 0
        assert scores[scheme]["per_label"]["PERSON"]["correct"] == 1
    assert "Partial matches" in out


HELP_OPTIONS = {
    "train": ["--output", "--model", "--resume", "--patience", "--gpu-id", "--name", "--version"],
    "verify": ["--min-recall", "--json", "--gpu-id"],
    "evaluate": ["--json", "--html", "--gpu-id"],
    "demo": ["--output"],
}
READER_OPTIONS = ["--format", "--on-misaligned", "--on-overlap", "--scheme", "--labels", "--label-map"]


@pytest.mark.parametrize("command", [None, "train", "verify", "evaluate", "demo", "labels", "convert"])
def test_help(command):
    code, out = cli(*([command] if command else []), "--help")
    assert code == 0, out
    if command is None:
        assert "--verbose" in out and "--version" in out
        for name in HELP_OPTIONS:
            assert name in out
    else:
        for option in HELP_OPTIONS.get(command, []):
            assert option in out
        if command != "demo":
            for option in READER_OPTIONS:
                assert option in out, option


def test_version():
    code, out = cli("--version")
    assert code == 0 and out.strip() == __version__
