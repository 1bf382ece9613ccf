"""Saving never removes what this package did not write: `train --output` refuses any directory
holding a user's files (before any work, changing nothing), a failed save keeps the earlier
model and leaves no temporary files, and an earlier output of this package is reused."""
import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import spacy
import srsly
from spacy.language import Language
from typer.testing import CliRunner

import spacy_ner_trainer.save
from spacy_ner_trainer.cli import app
from spacy_ner_trainer.save import MARKER, save_pipeline
from pipelines import ANSI, RECIPE_DATA, RECIPE_ENTS, ents, recipe_trained

OUTPUT_NAMES = {MARKER, "model-best", "model-last", "metrics.jsonl", "checkpoint"}


def snapshot(root):
    """Everything under `root`, links not followed: file bytes, directories, link targets."""
    root = Path(root)
    found = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_dir():
                found[key] = "dir"
            else:
                found[key] = path.read_bytes()
    return found


def leftovers(directory, name):
    """Anything beside `name` in `directory`: temporary directories a save left behind."""
    return sorted(p.name for p in Path(directory).iterdir() if p.name != name)


def invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, ANSI.sub("", result.output)


def one_line(out):
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    assert "Traceback" not in out
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The recipe's sentences as JSONL, in a folder of their own."""
    path = tmp_path_factory.mktemp("data") / "train.jsonl"
    srsly.write_jsonl(path, [[text, ann] for text, ann in RECIPE_DATA])
    return path


def train_args(data, output, *extra):
    return ["train", data, "--dev", data, "--output", output, "--n-iter", "2", "--seed", "0", *extra]


@pytest.fixture(scope="module")
def earlier_output(data, tmp_path_factory):
    """A directory an earlier `train --output` wrote: model-best, model-last, metrics, checkpoint."""
    output = tmp_path_factory.mktemp("earlier") / "out"
    code, out = invoke(*train_args(data, output))
    assert code == 0, out
    assert set(os.listdir(output)) == OUTPUT_NAMES
    return output


@pytest.fixture
def earlier(earlier_output, tmp_path):
    """A fresh copy of `earlier_output`."""
    output = tmp_path / "out"
    shutil.copytree(earlier_output, output, symlinks=True)
    return output


# Directories holding a user's files are refused before any work


def spacy_project(root, earlier_output):
    """A spaCy project folder whose seed.json is the training data."""
    (root / "corpus").mkdir(parents=True)
    (root / "config.cfg").write_text("[nlp]\nlang = \"en\"\npipeline = [\"ner\"]\n", encoding="utf8")
    (root / "NOTES.md").write_text("# Notes\nTrain on seed.json.\n", encoding="utf8")
    srsly.write_json(root / "seed.json", [[text, ann] for text, ann in RECIPE_DATA])
    (root / "corpus" / "train.spacy").write_bytes(b"\x00user data\x00")
    return root / "seed.json", ["config.cfg", "corpus/", "NOTES.md", "seed.json"]


def saved_pipeline(root, earlier_output):
    """A pipeline saved by spaCy, and a file of the user's beside it."""
    spacy.blank("en").to_disk(root)
    (root / "README.md").write_text("my pipeline\n", encoding="utf8")
    return None, ["config.cfg", "meta.json", "tokenizer", "vocab/", "README.md"]


def earlier_output_plus_a_file(root, earlier_output):
    shutil.copytree(earlier_output, root, symlinks=True)
    (root / "results.csv").write_text("epoch,f\n1,0.5\n", encoding="utf8")
    return None, ["results.csv"]


def hidden_file_named_like_a_temp(root, earlier_output):
    # Named like what a killed save leaves behind, but for an entry this package never wrote.
    shutil.copytree(earlier_output, root, symlinks=True)
    (root / ".notes.tmp-abc123").write_text("mine\n", encoding="utf8")
    return None, [".notes.tmp-abc123"]


@pytest.mark.parametrize("make", [spacy_project, saved_pipeline, earlier_output_plus_a_file,
                                  hidden_file_named_like_a_temp])
def test_train_refuses_a_directory_with_foreign_files(make, data, earlier_output, tmp_path):
    output = tmp_path / "out"
    train_path, named = make(output, earlier_output)
    before = snapshot(tmp_path)
    code, out = invoke(*train_args(train_path or data, output))
    assert code == 2, out
    line = one_line(out)
    assert str(output) in line
    for entry in named:
        assert entry in line, (entry, line)
    assert snapshot(tmp_path) == before


def test_train_refuses_a_symlink_as_output(data, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me\n", encoding="utf8")
    (tmp_path / "out").symlink_to(target, target_is_directory=True)
    before = snapshot(tmp_path)
    code, out = invoke(*train_args(data, tmp_path / "out"))
    assert code == 2, out
    line = one_line(out)
    assert str(tmp_path / "out") in line and "symbolic link" in line and str(target) in line
    assert snapshot(tmp_path) == before


def test_train_refuses_a_symlink_to_an_earlier_output(data, earlier_output, tmp_path):
    # Even an output of this package is not written through a link: what the link points to
    # may be somebody else's.
    (tmp_path / "out").symlink_to(earlier_output, target_is_directory=True)
    before = snapshot(earlier_output)
    code, out = invoke(*train_args(data, tmp_path / "out"))
    assert code == 2, out
    assert "symbolic link" in one_line(out)
    assert snapshot(earlier_output) == before


def test_train_output_under_a_file_exit_2(data, tmp_path):
    (tmp_path / "taken").write_text("not a directory\n", encoding="utf8")
    before = snapshot(tmp_path)
    code, out = invoke(*train_args(data, tmp_path / "taken" / "out"))
    assert code == 2, out
    assert str(tmp_path / "taken") in one_line(out)
    assert snapshot(tmp_path) == before


def make_unwritable(directory):
    """Make `directory` refuse new entries, even for root: chmod 0o555, and where that is not
    enough (root), the immutable attribute. Returns a function that undoes it, or None."""
    os.chmod(directory, 0o555)
    probe = directory / ".probe"
    try:
        probe.touch()
    except PermissionError:
        return lambda: os.chmod(directory, 0o755)
    probe.unlink()
    os.chmod(directory, 0o755)
    done = subprocess.run(["chattr", "+i", str(directory)], capture_output=True) if shutil.which("chattr") else None
    if done is None or done.returncode != 0:
        return None
    return lambda: subprocess.run(["chattr", "-i", str(directory)], check=True)


def test_train_read_only_earlier_output_exit_2_and_intact(data, earlier, tmp_path):
    before = snapshot(tmp_path)
    undo = make_unwritable(earlier)
    if undo is None:
        pytest.skip("cannot make a directory read-only here: running as root, and chattr +i "
                    "(the immutable attribute) is unavailable on this file system")
    try:
        code, out = invoke(*train_args(data, earlier))
    finally:
        undo()
    assert code == 2, out
    assert str(earlier) in one_line(out)
    assert "epoch" not in out.lower()  # failed before training
    assert snapshot(tmp_path) == before


# A failed save keeps the earlier model and leaves nothing behind


def hidden_leftovers(output):
    return sorted(name for name in os.listdir(output) if name.startswith(".") and name != MARKER)


def test_train_disk_full_during_save_keeps_the_earlier_model(data, earlier, monkeypatch):
    models = {name: snapshot(earlier / name) for name in ("model-best", "model-last")}
    real_to_disk = Language.to_disk

    def to_disk_then_full(self, path, **kwargs):
        path = Path(path)
        path.mkdir(parents=True)
        srsly.write_json(path / "meta.json", self.meta)
        self.vocab.to_disk(path / "vocab")  # some files are written ...
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ... then the disk is full

    monkeypatch.setattr(Language, "to_disk", to_disk_then_full)
    code, out = invoke(*train_args(data, earlier, "--name", "second"))
    monkeypatch.setattr(Language, "to_disk", real_to_disk)
    assert code == 2, out
    errors = [line for line in out.splitlines() if line.startswith("✘")]
    assert len(errors) == 1 and "No space left on device" in errors[0], out
    for name, files in models.items():
        assert snapshot(earlier / name) == files, name
    assert spacy.load(earlier / "model-last").meta["name"] != "second"
    assert hidden_leftovers(earlier) == []
    assert set(os.listdir(earlier)) == OUTPUT_NAMES


def test_train_reuses_an_earlier_output(data, earlier):
    code, out = invoke(*train_args(data, earlier, "--name", "second", "--version", "2.0.0"))
    assert code == 0, out
    for name in ("model-best", "model-last"):
        meta = spacy.load(earlier / name).meta
        assert (meta["name"], meta["version"]) == ("second", "2.0.0")
    assert set(os.listdir(earlier)) == OUTPUT_NAMES
    assert len(list(srsly.read_jsonl(earlier / "metrics.jsonl"))) == 2


def test_leftovers_of_a_killed_run_do_not_block_reuse(data, earlier):
    # What write_atomically leaves when a run is killed: ".<entry>.tmp-XXXX" beside each entry.
    for entry in ("model-last", "checkpoint", "metrics.jsonl"):
        leftover = earlier / f".{entry}.tmp-k1ll3d{len(entry)}"
        (leftover / "new").mkdir(parents=True)
        (leftover / "new" / "half-written").write_bytes(b"\x00" * 10)
    code, out = invoke(*train_args(data, earlier, "--name", "third"))
    assert code == 0, out
    assert spacy.load(earlier / "model-last").meta["name"] == "third"


def test_train_keeps_a_users_file_inside_an_earlier_model(data, earlier):
    notes = earlier / "model-last" / "NOTES.md"
    notes.write_text("what I changed\n", encoding="utf8")
    code, out = invoke(*train_args(data, earlier))
    # Refusing (exit 2, naming the file) or keeping the file would both do.
    assert notes.is_file() or (code == 2 and "NOTES.md" in out), out


def test_symlinked_model_in_an_earlier_output_keeps_its_target(data, earlier, tmp_path):
    target = tmp_path / "my-model"
    shutil.move(str(earlier / "model-last"), target)
    (earlier / "model-last").symlink_to(target, target_is_directory=True)
    before = snapshot(target)
    code, out = invoke(*train_args(data, earlier))
    assert code in (0, 2), out  # replacing the link or refusing: either keeps the target
    assert snapshot(target) == before


# save_pipeline and write_atomically


@pytest.fixture
def saved(tmp_path_factory, tmp_path):
    """A directory holding only `model`: the recipe's pipeline, saved."""
    nlp, _, _ = recipe_trained(tmp_path_factory)
    directory = tmp_path / "models"
    save_pipeline(nlp, directory / "model")
    return directory / "model"


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
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # ... and then the write fails

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


@pytest.mark.parametrize("failing", ["new", "old"])
def test_failure_to_rename_keeps_the_old_model(saved, monkeypatch, failing):
    # The new model is complete, but moving it into place (or the old one aside) fails.
    before = snapshot(saved)
    real_replace = os.replace

    def replace(src, dst):
        if Path(src).name == "new" if failing == "new" else Path(dst).name == "old":
            raise PermissionError(f"cannot rename {src}")
        return real_replace(src, dst)

    monkeypatch.setattr(spacy_ner_trainer.save.os, "replace", replace)
    with pytest.raises(PermissionError):
        save_pipeline(other_pipeline(), saved)
    monkeypatch.undo()
    check_intact(saved, before)


def test_write_atomically_replaces_a_file_and_keeps_it_on_failure(tmp_path):
    target = tmp_path / "metrics.jsonl"
    target.write_text("old\n", encoding="utf8")

    def fail(path):
        path.write_text("half", encoding="utf8")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError):
        spacy_ner_trainer.save.write_atomically(target, fail)
    assert target.read_text(encoding="utf8") == "old\n"
    assert leftovers(tmp_path, target.name) == []
    spacy_ner_trainer.save.write_atomically(target, lambda p: p.write_text("new\n", encoding="utf8"))
    assert target.read_text(encoding="utf8") == "new\n"
    assert leftovers(tmp_path, target.name) == []


def test_save_to_a_file_keeps_it(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me", encoding="utf8")
    with pytest.raises((OSError, ValueError)):
        save_pipeline(other_pipeline(), target)
    assert target.read_text(encoding="utf8") == "keep me"
    assert leftovers(tmp_path, "taken") == []


def test_save_to_a_file_fails_first(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me", encoding="utf8")
    nlp = other_pipeline()
    nlp.to_disk = lambda *a, **k: pytest.fail("to_disk must not be called")
    with pytest.raises((OSError, ValueError)) as failed:
        save_pipeline(nlp, target)
    assert ".tmp-" not in str(failed.value) and str(target) in str(failed.value)
