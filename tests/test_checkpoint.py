"""Checkpoints: a run interrupted (SIGINT, SIGTERM, kill -9) and resumed from its checkpoint
ends with exactly the model an uninterrupted run ends with; --resume without a checkpoint, or
with other data or settings, fails with one clear line; optimizer state survives a reload."""
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.training import Example
from spacy.util import fix_random_seed, minibatch
from typer.testing import CliRunner

import spacy_ner_trainer.cli.train
from spacy_ner_trainer import NerCorpus, TrainingInterrupted, TrainResult, train
from spacy_ner_trainer.batching import DEFAULT_BATCH_SIZE, batch_sizes
from spacy_ner_trainer.checkpoint import STATE_FILE, optimizer_state, restore_optimizer
from spacy_ner_trainer.cli import app
from spacy_ner_trainer.workflow import resume_command
from pipelines import ANSI, RECIPE_DATA, ncbi_path, recipe_trained

# Small enough to train in seconds; at this learn rate the dev F of the averaged weights rises
# and falls within three epochs (best epoch 2 of 3), so the best and the last weights, and the
# optimizer's moving averages, all go through the checkpoint.
N_TRAIN, N_DEV, N_ITER, LEARN_RATE = 40, 20, 3, 0.03
TRAIN_KWARGS = dict(n_iter=N_ITER, seed=0, learn_rate=LEARN_RATE, patience=0, average=True)


@pytest.fixture(scope="module")
def ncbi_train():
    path = ncbi_path("train")
    if path is None:
        pytest.skip("the NCBI-disease corpus is not available under shared/data/ncbi-disease")
    return path


def corpora(path):
    """Training data and dev data (the first training sentences: the dev F moves quickly)."""
    return NerCorpus(path, limit=N_TRAIN), NerCorpus(path, limit=N_DEV)


def dev_texts(path):
    return [eg.reference.text for eg in NerCorpus(path, limit=N_DEV)(spacy.blank("en"))]


class Stop:
    """Sends this process SIGINT after the `at_update`-th nlp.update, or once epoch
    `after_epoch` has been scored, the way Ctrl-C would; counts the updates of each epoch."""

    def __init__(self, nlp, at_update=None, after_epoch=None):
        self.at_update, self.after_epoch = at_update, after_epoch
        self.updates, self.per_epoch = 0, []
        real_update = nlp.update

        def update(*args, **kwargs):
            out = real_update(*args, **kwargs)
            self.updates += 1
            if self.updates == self.at_update:
                os.kill(os.getpid(), signal.SIGINT)
            return out

        nlp.update = update

    def on_epoch(self, row):
        self.per_epoch.append(self.updates - sum(self.per_epoch))
        if row["epoch"] == self.after_epoch:
            os.kill(os.getpid(), signal.SIGINT)


def outcome(nlp, result, texts):
    return {
        "ner": nlp.get_pipe("ner").model.to_bytes(),
        "last_weights": result.last_weights,
        "predictions": [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)],
        "best_epoch": result.best_epoch,
    }


@pytest.fixture(scope="module")
def uninterrupted(ncbi_train):
    """The run every resumed one must reproduce: (outcome, result, updates per epoch)."""
    nlp = spacy.blank("en")
    stop = Stop(nlp)
    train_data, dev_data = corpora(ncbi_train)
    result = train(nlp, train_data, dev_data=dev_data, on_epoch=stop.on_epoch, **TRAIN_KWARGS)
    assert result.best_epoch is not None and result.best_epoch < N_ITER, \
        "the setup should keep a best epoch other than the last; choose another learn rate"
    return outcome(nlp, result, dev_texts(ncbi_train)), result, stop.per_epoch


_RESUMED = {}


def interrupt_and_resume(ncbi_train, tmp_path_factory, per_epoch, case):
    """Train until the signal of `case`, then resume on a fresh pipeline: (exception, result, outcome)."""
    if case not in _RESUMED:
        checkpoint = tmp_path_factory.mktemp("checkpoint") / "checkpoint"
        first = per_epoch[0]
        at_update, after_epoch = {"mid-epoch": (first + 3, None), "last-batch": (first, None),
                                  "after-scoring": (None, 1)}[case]
        nlp = spacy.blank("en")
        stop = Stop(nlp, at_update, after_epoch)
        train_data, dev_data = corpora(ncbi_train)
        with pytest.raises(TrainingInterrupted) as stopped:
            train(nlp, train_data, dev_data=dev_data, checkpoint=checkpoint, on_epoch=stop.on_epoch, **TRAIN_KWARGS)
        fresh = spacy.blank("en")
        train_data, dev_data = corpora(ncbi_train)
        result = train(fresh, train_data, dev_data=dev_data, checkpoint=checkpoint, resume=True, **TRAIN_KWARGS)
        _RESUMED[case] = (stopped.value, result, outcome(fresh, result, dev_texts(ncbi_train)))
    return _RESUMED[case]




@pytest.mark.parametrize("case", [
    "mid-epoch",
    "last-batch",
    "after-scoring",
])
def test_resume_ends_with_the_uninterrupted_model(ncbi_train, tmp_path_factory, uninterrupted, case):
    expected, expected_result, per_epoch = uninterrupted
    stopped, result, got = interrupt_and_resume(ncbi_train, tmp_path_factory, per_epoch, case)
    assert stopped.signum == signal.SIGINT and stopped.exit_code == 130
    assert (stopped.checkpoint / STATE_FILE).is_file()
    assert got["best_epoch"] == expected["best_epoch"]
    assert got["predictions"] == expected["predictions"]
    assert got["ner"] == expected["ner"]  # the best epoch's weights
    assert got["last_weights"] == expected["last_weights"]
    assert result.losses == pytest.approx(expected_result.losses, rel=1e-9)
    assert [s["ents_f"] for s in result.scores] == pytest.approx([s["ents_f"] for s in expected_result.scores])
    assert [row["epoch"] for row in result.epochs] == list(range(1, N_ITER + 1))


def test_resumed_epoch_row_counts_all_its_words(ncbi_train, tmp_path_factory, uninterrupted):
    _, expected_result, per_epoch = uninterrupted
    _, result, _ = interrupt_and_resume(ncbi_train, tmp_path_factory, per_epoch, "mid-epoch")
    assert result.n_words == expected_result.n_words
    assert [row["words"] for row in result.epochs] == [row["words"] for row in expected_result.epochs]


def test_resume_keeps_the_best_epoch_on_a_tie(tmp_path_factory, tmp_path):
    # The recipe's model finds London and Berlin; against this gold (I, like, London, and) that is
    # P 1/2, R 1/4, F 1/3 in every epoch: at a tiny learn rate the predictions do not change,
    # the weights do, and the first of the tied epochs is the best one.
    _, _, saved = recipe_trained(tmp_path_factory)
    dev = [("I like London and Berlin.", {"entities": [(0, 1, "LOC"), (2, 6, "LOC"), (7, 13, "LOC"), (14, 17, "LOC")]})]
    kwargs = dict(dev_data=dev, n_iter=2, seed=0, learn_rate=1e-5, patience=0)

    def recipe():
        return spacy.load(saved)

    nlp = recipe()
    expected = train(nlp, RECIPE_DATA, **kwargs)
    assert [s["ents_f"] for s in expected.scores] == [pytest.approx(1 / 3)] * 2 and expected.best_epoch == 1
    nlp = recipe()
    stop = Stop(nlp, after_epoch=1)
    with pytest.raises(TrainingInterrupted):
        train(nlp, RECIPE_DATA, checkpoint=tmp_path / "checkpoint", on_epoch=stop.on_epoch, **kwargs)
    resumed = train(recipe(), RECIPE_DATA, checkpoint=tmp_path / "checkpoint", resume=True, **kwargs)
    assert resumed.best_epoch == expected.best_epoch
    assert [s["ents_f"] for s in resumed.scores] == [s["ents_f"] for s in expected.scores]


def test_optimizer_state_is_keyed_stably_across_a_reload():
    """thinc keys Adam's state by node id; a reloaded pipeline has other ids but must get the
    same state back, and then take exactly the same next step."""
    examples = RECIPE_DATA

    def pipeline():
        nlp = spacy.blank("en")
        nlp.add_pipe("ner")
        return nlp

    fix_random_seed(0)
    nlp = pipeline()
    egs = [Example.from_dict(nlp.make_doc(text), ann) for text, ann in examples]
    nlp.initialize(lambda: egs)
    optimizer = nlp.create_optimizer()
    for _ in range(3):
        nlp.update(egs, sgd=optimizer, drop=0.0)
    state = srsly.msgpack_loads(srsly.msgpack_dumps(optimizer_state(optimizer, nlp, ["ner"], steps=3)))

    reloaded = pipeline().from_bytes(nlp.to_bytes())
    ids = {node.id for node in nlp.get_pipe("ner").model.walk()}
    assert ids.isdisjoint(node.id for node in reloaded.get_pipe("ner").model.walk())  # other keys
    reloaded_optimizer = reloaded.create_optimizer()
    assert restore_optimizer(reloaded_optimizer, state, reloaded, ["ner"]) == 3
    again = optimizer_state(reloaded_optimizer, reloaded, ["ner"], steps=3)
    assert state["mom1"] and state["mom2"] and state["nr_update"]
    for table in ("mom1", "mom2", "averages", "nr_update", "last_seen"):
        if state[table] is None:  # spaCy's default Adam keeps no averages
            assert again[table] is None, table
            continue
        assert set(again[table]) == set(state[table]), table
        for key, value in state[table].items():
            assert (again[table][key] == value).all() if hasattr(value, "shape") else again[table][key] == value
    # The same next step on both (the parser's update draws from `random`) gives the same weights.
    regs = [Example.from_dict(reloaded.make_doc(text), ann) for text, ann in examples]
    fix_random_seed(1)
    nlp.update(egs, sgd=optimizer, drop=0.0)
    fix_random_seed(1)
    reloaded.update(regs, sgd=reloaded_optimizer, drop=0.0)
    assert reloaded.get_pipe("ner").model.to_bytes() == nlp.get_pipe("ner").model.to_bytes()


# The command line

CLI_N_ITER = 5


def write_sentences(source, target, n):
    """The first `n` sentences of a token<TAB>tag file."""
    blocks = source.read_text(encoding="utf8").split("\n\n")[:n]
    target.write_text("\n\n".join(blocks) + "\n", encoding="utf8")
    return target


@pytest.fixture(scope="module")
def cli_data(ncbi_train, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-data")
    write_sentences(ncbi_train, folder / "train.tsv", N_TRAIN)
    write_sentences(ncbi_train, folder / "dev.tsv", N_DEV)
    return folder


def cli_args(folder, output="out", *extra):
    """The command's arguments; `folder` None names the data files relative to the working directory."""
    data = Path(folder) if folder is not None else Path()
    return ["train", str(data / "train.tsv"), "--dev", str(data / "dev.tsv"), "--output", str(output),
            "--n-iter", str(CLI_N_ITER), "--seed", "0", "--learn-rate", str(LEARN_RATE), "--patience", "0",
            *extra]


def invoke(args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, ANSI.sub("", result.output)


def model_bytes(output):
    return {name: (output / name / "ner" / "model").read_bytes() for name in ("model-best", "model-last")}


@pytest.fixture(scope="module")
def cli_uninterrupted(cli_data, tmp_path_factory):
    output = tmp_path_factory.mktemp("cli-uninterrupted") / "out"
    code, out = invoke(cli_args(cli_data, output))
    assert code == 0, out
    return model_bytes(output), list(srsly.read_jsonl(output / "metrics.jsonl"))


def batches_per_epoch(n_examples):
    return len(list(minibatch(range(n_examples), size=iter(batch_sizes(DEFAULT_BATCH_SIZE)))))


def start_training(cli_data, cwd):
    """`python -m spacy_ner_trainer train train.tsv ... --output out` in `cwd` (the data copied
    there), once its first checkpoint exists."""
    for name in ("train.tsv", "dev.tsv"):
        shutil.copy(cli_data / name, cwd / name)
    proc = subprocess.Popen([sys.executable, "-m", "spacy_ner_trainer", *cli_args(None)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf8")
    state = cwd / "out" / "checkpoint" / STATE_FILE
    deadline = time.monotonic() + 300  # a guard against hanging, not a timing assertion
    while not state.is_file() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before its first checkpoint: " + "".join(proc.communicate())
    return proc


def check_same_run(output, cli_uninterrupted):
    expected_bytes, expected_rows = cli_uninterrupted
    rows = list(srsly.read_jsonl(output / "metrics.jsonl"))
    assert [r["epoch"] for r in rows] == list(range(1, CLI_N_ITER + 1))
    assert [r["loss"] for r in rows] == pytest.approx([r["loss"] for r in expected_rows], rel=1e-9)
    assert model_bytes(output) == expected_bytes


@pytest.mark.slow
def test_cli_sigterm_then_resume(cli_data, cli_uninterrupted, tmp_path):
    proc = start_training(cli_data, tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    out, err = ANSI.sub("", out), ANSI.sub("", err)
    assert proc.returncode == 143, out + err
    assert "Traceback" not in err
    # The message is read with its line breaks undone: test_cli_interrupted_message_is_one_line
    # checks that there are none.
    text = " ".join((out + err).split())
    assert "checkpoint saved to " + os.path.join("out", "checkpoint") in text, text
    command = shlex.split(text[text.index("python -m spacy_ner_trainer"):])
    assert command == ["python", "-m", "spacy_ner_trainer", *cli_args(None), "--resume"]
    resumed = subprocess.run([sys.executable, *command[1:]], cwd=tmp_path, capture_output=True, text=True,
                             encoding="utf8", timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    check_same_run(tmp_path / "out", cli_uninterrupted)


@pytest.mark.slow
def test_cli_kill_9_then_resume(cli_data, cli_uninterrupted, tmp_path):
    proc = start_training(cli_data, tmp_path)
    proc.kill()
    proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL
    code, out = invoke(cli_args(tmp_path, tmp_path / "out", "--resume"))
    assert code == 0, out
    check_same_run(tmp_path / "out", cli_uninterrupted)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_interrupted_message_is_one_line(monkeypatch, tmp_path, signum):
    (tmp_path / "data").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "data" / name).write_text("Aspirin\tB-Chemical\n", encoding="utf8")
    args = cli_args(tmp_path / "data", tmp_path / "out")

    def interrupted(*a, **k):
        raise TrainingInterrupted(signum, tmp_path / "out" / "checkpoint", TrainResult())

    monkeypatch.setattr(spacy_ner_trainer.cli.train, "train_pipeline", interrupted)
    monkeypatch.setattr(sys, "argv", ["/somewhere/spacy_ner_trainer/__main__.py", *args])
    code, out = invoke(args)
    assert code == 128 + signum, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert str(tmp_path / "out" / "checkpoint") in lines[0]
    command = shlex.split(lines[0][lines[0].index("python -m spacy_ner_trainer"):])
    assert command == ["python", "-m", "spacy_ner_trainer", *args, "--resume"]


def test_resume_command_quotes_its_arguments():
    args = ["train", "my data/train.tsv", "--output", "it's out", "--n-iter", "2"]
    assert shlex.split(resume_command(args)) == ["python", "-m", "spacy_ner_trainer", *args, "--resume"]


def one_error_line(out):
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    return lines[0]


def test_cli_resume_without_a_checkpoint_exit_2(cli_data, tmp_path):
    code, out = invoke(cli_args(cli_data, tmp_path / "out", "--resume"))
    assert code == 2, out
    line = one_error_line(out)
    assert str(tmp_path / "out" / "checkpoint") in line and "no checkpoint" in line
    assert not (tmp_path / "out" / "model-last").exists()


@pytest.fixture(scope="module")
def finished_tiny_run(tmp_path_factory):
    """A completed one-epoch CLI run on the recipe's sentences: (data folder, output)."""
    folder = tmp_path_factory.mktemp("tiny")
    srsly.write_jsonl(folder / "train.jsonl", [[text, ann] for text, ann in RECIPE_DATA])
    srsly.write_jsonl(folder / "other.jsonl", [[text, ann] for text, ann in RECIPE_DATA[:1]])
    code, out = invoke(["train", folder / "train.jsonl", "--output", folder / "out", "--n-iter", "1", "--seed", "0"])
    assert code in (0, 1), out  # one epoch need not verify; the checkpoint is what matters
    return folder


def snapshot(directory):
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in directory.rglob("*") if p.is_file()}


@pytest.mark.parametrize("change,named", [
    (["--seed", "1"], "seed"),
    (["--dropout", "0.3"], "dropout"),
    (["--data", "other.jsonl"], "data"),
])
def test_cli_resume_with_other_data_or_settings_exit_2(finished_tiny_run, tmp_path, change, named):
    output = tmp_path / "out"
    shutil.copytree(finished_tiny_run / "out", output)
    before = snapshot(output)
    data = finished_tiny_run / (change[1] if change[0] == "--data" else "train.jsonl")
    settings = {"--n-iter": "1", "--seed": "0"}
    if change[0] != "--data":
        settings[change[0]] = change[1]
    args = ["train", data, "--output", output, "--resume"] + [x for kv in settings.items() for x in kv]
    code, out = invoke(args)
    assert code == 2, out
    line = one_error_line(out)
    assert str(output / "checkpoint") in line and f"{named}:" in line and "other data or settings" in line
    assert snapshot(output) == before
