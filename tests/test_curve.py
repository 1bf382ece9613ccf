"""train-curve: the reading of the last step, the runs train_curve makes, and the command on real data."""
import re

import pytest
from typer.testing import CliRunner

import spacy_ner_trainer.curve
from spacy_ner_trainer.cli import app
from spacy_ner_trainer.curve import CurveRow, read_curve, train_curve
from spacy_ner_trainer.errors import UsageError
from spacy_ner_trainer.loop import TrainResult
from pipelines import ANSI


def rows(*fs):
    out = []
    for i, f in enumerate(fs):
        out.append(CurveRow((i + 1) / len(fs), 10 * (i + 1), f, f - fs[i - 1] if i else None))
    return out


@pytest.mark.parametrize("fs,improved", [
    ((0.40, 0.50, 0.55, 0.58), True),  # still rising
    ((0.40, 0.50, 0.60, 0.59), False),  # fell in the last step, whatever came before
    ((0.40, 0.50, 0.60, 0.60), False),  # flat
    ((0.60, 0.50, 0.40, 0.45), True),  # only the last step counts
])
def test_reading_of_the_last_step(fs, improved):
    result = read_curve(rows(*fs))
    assert result.improved is improved
    step = f"from 75% to 100% of the data, dev F {fs[-1] - fs[-2]:+.3f}"
    assert step in result.verdict
    assert ("likely to improve" in result.verdict) is improved
    assert ("unlikely to help" in result.verdict) is not improved


def test_one_run_says_nothing():
    result = read_curve(rows(0.5))
    assert not result.improved and "no step to read" in result.verdict


DATA = [(f"Patient {i} took aspirin.", {"entities": [(len(f"Patient {i} took "), len(f"Patient {i} took aspirin"), "CHEM")]})
        for i in range(10)]


def test_runs_are_fresh_prefixes_of_one_shuffle(monkeypatch):
    """Each run gets a new pipeline, a prefix of the same seeded shuffle and the same settings;
    its best dev F becomes the row."""
    calls = []

    def fake_train(nlp, train_data, **kwargs):
        calls.append((nlp, [eg.reference.text for eg in train_data], kwargs))
        return TrainResult(best_score=0.1 * len(train_data))

    monkeypatch.setattr(spacy_ner_trainer.curve, "train", fake_train)
    result = train_curve(DATA, DATA[:2], seed=3, n_iter=7)
    assert [row.n_examples for row in result.rows] == [3, 5, 8, 10]  # 2.5 and 7.5 round up
    assert len({id(nlp) for nlp, _, _ in calls}) == 4
    assert all(not nlp.pipe_names for nlp, _, _ in calls)  # blank: nothing trained before
    texts = [texts for _, texts, _ in calls]
    assert all(texts[i] == texts[-1][:len(texts[i])] for i in range(3))
    assert sorted(texts[-1]) == sorted(text for text, _ in DATA) and texts[-1] != [text for text, _ in DATA]
    assert all(kwargs["seed"] == 3 and kwargs["n_iter"] == 7 and len(kwargs["dev_data"]) == 2
               for _, _, kwargs in calls)
    assert [row.f for row in result.rows] == pytest.approx([0.3, 0.5, 0.8, 1.0])
    assert [row.delta for row in result.rows] == [None, pytest.approx(0.2), pytest.approx(0.3), pytest.approx(0.2)]
    assert result.improved
    # Another seed, another shuffle.
    calls.clear()
    train_curve(DATA, DATA[:2], seed=4, fractions=(1.0,))
    assert calls[0][1] != texts[-1]


def test_bad_fractions_and_a_share_without_entities():
    with pytest.raises(ValueError, match="fractions"):
        train_curve(DATA, DATA, fractions=(0.5, 0.25))
    with pytest.raises(ValueError, match="fractions"):
        train_curve(DATA, DATA, fractions=(0, 1.0))
    empty = [(text, {"entities": []}) for text, _ in DATA]
    with pytest.raises(UsageError, match=r"25% of the training data \(3 of 10 examples\) holds no entities"):
        train_curve(empty, DATA)


ROW = re.compile(r"^(\d+)%\s+(\d+)\s+(\d\.\d{3})\s*([+-]\d\.\d{3} [▲▼=])?\s*$")


def first_sentences(path, n):
    return "\n\n".join(path.read_text(encoding="utf8").split("\n\n")[:n]) + "\n"


def test_command_on_real_data(corpus_path, write, tmp_path):
    train_path = write("train.tsv", first_sentences(corpus_path("bc5cdr/train.tsv"), 120))
    dev_path = write("dev.tsv", first_sentences(corpus_path("bc5cdr/devel.tsv"), 100))
    page = tmp_path / "curve.html"
    result = CliRunner().invoke(app, ["train-curve", str(train_path), "--dev", str(dev_path), "--n-iter", "2",
                                      "--html", str(page), "--quiet"])
    out = ANSI.sub("", result.stdout)
    assert result.exit_code == 0, out
    printed = [ROW.match(line.strip()).groups() for line in out.splitlines() if ROW.match(line.strip())]
    assert [(pct, n) for pct, n, _, _ in printed] == [("25", "30"), ("50", "60"), ("75", "90"), ("100", "120")]
    fs = [float(f) for _, _, f, _ in printed]
    assert printed[0][3] is None
    for (_, _, _, change), before, after in zip(printed[1:], fs, fs[1:]):
        assert float(change[:-2]) == pytest.approx(after - before, abs=0.0015)
    # The rows come from the trained models: the full data scores above nothing at all.
    assert fs[-1] > 0
    improved = printed[-1][3].endswith("▲")
    text = " ".join(out.split())  # wasabi wraps long lines
    assert ("likely to improve the model" in text) is improved
    assert ("unlikely to help" in text) is not improved
    html = page.read_text(encoding="utf8")
    assert "Learning curve" in html and "<td>120</td>" in html and "in the last step" in html


def test_command_fails_cleanly_on_bad_data(write):
    train_path = write("train.jsonl", '["No entities here.", {"entities": []}]\n' * 8)
    result = CliRunner().invoke(app, ["train-curve", str(train_path), "--dev", str(train_path)])
    assert result.exit_code == 2
    assert ANSI.sub("", result.stdout).strip().splitlines()[-1] == (
        "✘ 25% of the training data (2 of 8 examples) holds no entities: use more data")
