"""Training corpora larger than memory: configs/streaming.cfg with `spacy train`, and the CLI's
--buffer-size (issue #16; bench/bench_scale.py measures the memory)."""
import functools
from pathlib import Path
from typing import Any, Dict, List

import pytest
import spacy
import srsly
from spacy.cli.train import train as spacy_train
from typer.testing import CliRunner

from spacy_ner_trainer import NerCorpus
from spacy_ner_trainer.cli import app
from spacy_ner_trainer.cli import train as cli_train
from pipelines import ANSI, conll_counts

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "streaming.cfg"
N_TRAIN, N_DEV = 120, 50
BUFFER = 40  # smaller than the slice: the batcher streams it

# What the probes below see during one `spacy train` run.
READS: List[List[Any]] = []  # one [path, examples yielded so far] per call of a NerCorpus
UPDATES: List[Dict[str, Any]] = []  # per update: step, epoch, and what the latest training read had yielded


@spacy.registry.callbacks("test_streaming.probe.v1")
def probe_v1(train_path: str):
    def before_update(nlp, args: Dict[str, Any]) -> None:
        reads = [n for path, n in READS if path == train_path]
        UPDATES.append({"step": args["step"], "epoch": args["epoch"], "read": reads[-1]})

    return before_update


def head(source: Path, target: Path, n: int) -> Path:
    """The first `n` sentences of a CoNLL file (a whitespace-only line ends one), lines as they are."""
    with source.open(encoding="utf8") as src, target.open("w", encoding="utf8") as dst:
        for line in src:
            dst.write(line)
            if not line.strip():
                n -= 1
                if n == 0:
                    break
    return target


@pytest.fixture(scope="module")
def wnut(corpus_path, tmp_path_factory):
    """The first N_TRAIN sentences of WNUT-17 train and N_DEV of its dev set."""
    folder = tmp_path_factory.mktemp("wnut")
    return (head(corpus_path("wnut17/wnut17train.conll"), folder / "train.conll", N_TRAIN),
            head(corpus_path("wnut17/emerging.dev.conll"), folder / "dev.conll", N_DEV))


@pytest.fixture
def counted_reads(monkeypatch):
    """Every NerCorpus call is recorded in READS with how many examples it has yielded."""
    READS.clear()
    UPDATES.clear()
    original = NerCorpus.__call__

    def counting(self, nlp):
        read = [str(self.path), 0]
        READS.append(read)
        for eg in original(self, nlp):
            read[1] += 1
            yield eg

    monkeypatch.setattr(NerCorpus, "__call__", counting)
    return READS


def test_streaming_config_trains_with_spacy_train(wnut, tmp_path, counted_reads):
    train_path, dev_path = wnut
    out = tmp_path / "out"
    spacy_train(CONFIG, out, overrides={
        "paths.train": str(train_path), "paths.dev": str(dev_path),
        "training.max_steps": 60, "training.eval_frequency": 30, "training.batcher.buffer_size": BUFFER,
        "training.before_update": {"@callbacks": "test_streaming.probe.v1", "train_path": str(train_path)},
    })
    assert UPDATES[-1]["step"] == 60
    # spaCy streamed every pass: when a pass's first batch was trained, its read of the
    # corpus had filled the shuffle buffer and no more (with max_epochs >= 0, spaCy reads all
    # N_TRAIN sentences into a list first). 60 steps of 4-5 examples take more than one pass.
    firsts = {u["epoch"]: u["read"] for u in reversed(UPDATES)}
    assert len(firsts) >= 2
    assert all(BUFFER <= read < N_TRAIN for read in firsts.values()), firsts
    _, _, entities = conll_counts(train_path, N_TRAIN)
    for name in ("model-best", "model-last"):
        nlp = spacy.load(out / name)
        # The labels came from ner_labels.v1's pass over the slice: exactly its labels.
        assert set(nlp.get_pipe("ner").labels) == set(entities)
        assert nlp.config["training"]["max_epochs"] == -1
        assert nlp.config["training"]["batcher"]["@batchers"] == "spacy-ner-trainer.shuffled_batches.v1"
        # The verify.v1 callback's reports ship in meta.json, on the first examples only.
        reports = srsly.read_json(out / name / "meta.json")["spacy_ner_trainer"]["verify"]
        assert reports["train"]["n_examples"] == N_TRAIN and reports["dev"]["n_examples"] == N_DEV


def test_cli_buffer_size_streams_and_reports_its_verification_sample(wnut, tmp_path, monkeypatch):
    train_path, _ = wnut
    # A smaller verification sample than the default 2000, so that a small slice shows it is a sample.
    monkeypatch.setattr(cli_train, "train_pipeline", functools.partial(cli_train.train_pipeline, verify_sample=50))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["train", str(train_path), "--output", str(out), "--n-iter", "1",
                                      "--buffer-size", str(BUFFER), "--quiet"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    output = ANSI.sub("", result.output)
    assert result.exit_code == 0, output
    assert "Training data (50 examples sampled)" in output
    state = srsly.read_json(out / "checkpoint" / "state.json")
    assert state["fingerprint"]["buffer_size"] == BUFFER
    _, _, entities = conll_counts(train_path, N_TRAIN)
    meta = srsly.read_json(out / "model-last" / "meta.json")
    # The labels from the streamed pass, with their counts, as the file has them.
    assert meta["spacy_ner_trainer"]["labels"] == entities
    assert meta["spacy_ner_trainer"]["verify"]["train"]["n_examples"] == 50
    assert set(spacy.load(out / "model-last").get_pipe("ner").labels) == set(entities)
