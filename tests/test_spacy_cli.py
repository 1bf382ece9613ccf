"""The commands under spaCy's own CLI, `python -m spacy ner-trainer ...` (entry-point group
spacy_cli), and spaCy's CLI itself with the plugin installed, working or broken. A fresh
`python -m spacy` runs where the process is the point (the entry point adds the commands, a
broken plugin leaves spaCy working); the rest runs in process (typer's CliRunner)."""
import contextlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
import srsly
from typer.testing import CliRunner

ANSI = re.compile(r"\x1b\[[0-9;]*m")
COMMANDS = ["train", "verify", "evaluate", "debug", "labels", "convert", "init-config"]
# spaCy's own commands, which must survive whatever the plugin does.
SPACY_COMMANDS = ["train", "evaluate", "convert", "info", "init", "debug", "package"]


def run(args, cwd, module="spacy"):
    """`python -m MODULE ARGS` in `cwd`, in process: (exit code, stdout, stderr), colours
    removed. spaCy's app has the plugin's commands once its spacy_cli entry points are loaded."""
    if module == "spacy":
        spacy.registry.cli.get_all()  # what `python -m spacy` does first: loads the entry points
        from spacy.cli._util import app
    else:
        from spacy_ner_trainer.cli import app
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(app, [str(a) for a in args], prog_name=f"python -m {module}")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)


def run_process(args, cwd):
    """A fresh `python -m spacy ARGS` in `cwd`: (returncode, stdout, stderr), colours removed."""
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, encoding="utf8", timeout=600,
    )
    return proc.returncode, ANSI.sub("", proc.stdout), ANSI.sub("", proc.stderr)


def listed_commands(help_text: str) -> list:
    """The command names of a --help page, plain (click, as spaCy's) or boxed (rich)."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^(Commands:|╭─ Commands )", line))
    names = []
    for line in lines[start + 1:]:
        if not line.strip() or line.startswith("╰"):
            break
        m = re.match(r"^(?:│ |  )([a-z][\w-]*)\s", line)
        if m:
            names.append(m.group(1))
    return names


def test_spacy_help_lists_its_commands_and_ner_trainer(tmp_path):
    code, out, err = run(["--help"], tmp_path)
    assert code == 0, out + err
    commands = listed_commands(out)
    assert "ner-trainer" in commands
    assert set(SPACY_COMMANDS) <= set(commands)
    assert "Traceback" not in err and "could not add" not in err


def test_spacy_ner_trainer_help_lists_every_command(tmp_path):
    """A fresh `python -m spacy` finds the commands through the entry point, cleanly."""
    code, out, err = run_process(["ner-trainer", "--help"], tmp_path)
    assert code == 0, out + err
    assert "Traceback" not in err and "could not add" not in err
    assert set(COMMANDS) <= set(listed_commands(out))
    # The same commands as the package's own CLI.
    code2, own, err2 = run(["--help"], tmp_path, module="spacy_ner_trainer")
    assert code2 == 0, own + err2
    assert set(listed_commands(own)) == set(listed_commands(out))


@pytest.mark.parametrize("command", ["evaluate", "debug", "labels", "convert", "init-config"])
def test_spacy_ner_trainer_command_help(command, tmp_path):
    code, out, err = run(["ner-trainer", command, "--help"], tmp_path)
    assert code == 0, out + err
    assert f"ner-trainer {command}" in " ".join(out.split())  # spaCy's usage line
    if command == "labels":
        assert "[initialize.components.ner.labels]" in out, out


def test_labels_help_names_the_config_section(tmp_path):
    """`python -m spacy_ner_trainer labels --help` says where the JSON goes,
    [initialize.components.ner.labels], as the spaCy route does (brackets are text, not markup)."""
    code, out, err = run(["labels", "--help"], tmp_path, module="spacy_ner_trainer")
    assert code == 0, out + err
    assert "[initialize.components.ner.labels]" in out, out


def test_spacy_info_still_works(tmp_path):
    code, out, err = run(["info"], tmp_path)
    assert code == 0, out + err
    import spacy

    assert spacy.__version__ in out


def write_data(path: Path) -> dict:
    records = [
        ["Alice lives in Paris.", {"entities": [[0, 5, "PERSON"], [15, 20, "GPE"]]}],
        ["Bob moved to London.", {"entities": [[0, 3, "PERSON"], [13, 19, "GPE"]]}],
        ["Maria visited Berlin.", {"entities": [[0, 5, "PERSON"]]}],
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    counts: dict = {}
    for _, ann in records:
        for *_, label in ann["entities"]:
            counts[label] = counts.get(label, 0) + 1
    return counts


def test_spacy_ner_trainer_labels(tmp_path):
    counts = write_data(tmp_path / "train.jsonl")
    code, out, err = run(["ner-trainer", "labels", "train.jsonl", "--output", "spacy.json"], tmp_path)
    assert code == 0, out + err
    rows = {line.split()[0]: line.split()[1] for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[0] in counts}
    assert rows == {label: str(n) for label, n in counts.items()}
    # The very same file as the package's own CLI writes.
    code, out, err = run(["labels", "train.jsonl", "--output", "own.json"], tmp_path, module="spacy_ner_trainer")
    assert code == 0, out + err
    assert srsly.read_json(tmp_path / "spacy.json") == srsly.read_json(tmp_path / "own.json")


def test_spacy_ner_trainer_errors_exit_2(tmp_path):
    code, out, err = run(["ner-trainer", "labels", "missing.jsonl"], tmp_path)
    assert code == 2 and "missing.jsonl" in out + err and "Traceback" not in err, out + err


# A broken plugin must not break spaCy


BREAK_PLUGIN = """
import runpy, sys
# The plugin's command module cannot be imported (as after a broken install or a bad dependency).
sys.modules["spacy_ner_trainer.cli"] = None
# `python -m spacy info`, then `python -m spacy --help`, in this one process; each ends in an exit.
for args in (["info"], ["--help"]):
    sys.argv = ["spacy", *args]
    try:
        runpy.run_module("spacy", run_name="__main__", alter_sys=True)
    except SystemExit as exit:
        print(f"{SEPARATOR}{exit.code or 0}", flush=True)
        print(SEPARATOR, file=sys.stderr, flush=True)
"""
SEPARATOR = "=== exit "


def test_spacy_cli_survives_a_broken_plugin(tmp_path):
    proc = subprocess.run([sys.executable, "-c", f"SEPARATOR = {SEPARATOR!r}" + BREAK_PLUGIN], cwd=tmp_path,
                          capture_output=True, text=True, encoding="utf8", timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (info, info_code, help_, help_code, rest), (info_err, _, _) = (
        re.split(rf"^{SEPARATOR}(\d+)\n", ANSI.sub("", proc.stdout), flags=re.M),
        proc.stderr.split(SEPARATOR + "\n"))
    assert (info_code, help_code, rest) == ("0", "0", ""), proc.stdout + proc.stderr
    assert "spaCy version" in info
    assert "spacy-ner-trainer" in info_err  # a warning says why its commands are missing
    commands = listed_commands(help_)
    assert set(SPACY_COMMANDS) <= set(commands) and "ner-trainer" not in commands
