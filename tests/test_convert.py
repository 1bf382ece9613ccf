"""The data tools `convert` and `labels` (the CLI, in process) on real corpora and crafted
files, and the progress bars of the long-running commands: shown on a terminal, silent
with --quiet and when the output is piped."""
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from collections import Counter
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
import srsly
from spacy.tokens import DocBin
from spacy.training import Corpus

from spacy_ner_trainer import NerCorpus
from spacy_ner_trainer.convert import convert_examples
from pipelines import run_cli

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
LOW_COUNT = 20  # README: "Labels with fewer than 20 examples are warned about."



def published(folder: str, file: str) -> Dict[str, int]:
    """The row of <folder>/SOURCE.md's "Files" table for `file`: column name -> number."""
    source = DATA_DIR / folder / "SOURCE.md"
    lines = [line for line in source.read_text(encoding="utf8").splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == file:
            return {h: int(c.replace(",", "")) for h, c in zip(header, cells) if c.replace(",", "").isdigit()}
    raise AssertionError(f"{file} is not in {source}")


def label_columns(counts: Dict[str, int]) -> Dict[str, int]:
    return {k: v for k, v in counts.items() if k not in ("bytes", "sentences", "tokens", "entities")}


def real_file(folder: str, name: str) -> Path:
    path = DATA_DIR / folder / name
    if not path.is_file():
        pytest.skip(f"the real corpus file {path} is not available")
    return path


def entities(path: Path) -> List[List[tuple]]:
    """(entity text, label) of each example NerCorpus reads from `path`."""
    return [[(e.text, e.label_) for e in eg.reference.ents] for eg in NerCorpus(path)(spacy.blank("en"))]


def low_labels(output: str) -> Dict[str, int]:
    """The labels the one low-count warning (labels.low_count_message) lists, wherever the
    command printed or logged it."""
    match = re.search(r"labels with fewer than \d+ examples: (.*?); the model", output)
    return {} if match is None else {label: int(n) for label, n in re.findall(r"(\S+) \((\d+)\)", match.group(1))}


def labels_table(out: str) -> Dict[str, int]:
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["label", "entities"])
    counts = {}
    for line in lines[start + 2:]:
        cells = line.split()
        if len(cells) != 2 or not cells[1].isdigit():
            break
        counts[cells[0]] = int(cells[1])
    return counts


# convert, real data


@pytest.mark.parametrize("folder,name", [("ncbi-disease", "devel.tsv"), ("wnut17", "emerging.dev.conll")])
def test_convert_real_conll_round_trip(folder, name, tmp_path):
    """CoNLL -> .spacy and CoNLL -> .jsonl: read back, the same examples and entities as
    SOURCE.md publishes and as the input gives."""
    source = real_file(folder, name)
    counts = published(folder, name)
    examples = list(NerCorpus(source)(spacy.blank("en")))
    original = [[(e.text, e.label_) for e in eg.reference.ents] for eg in examples]
    words = [[t.text for t in eg.reference] for eg in examples]
    assert len(original) == counts["sentences"]
    for output in ("out.spacy", "out.jsonl"):
        code, out, err = run_cli("convert", source, output, cwd=tmp_path)
        assert code == 0, out + err
        assert "\r" not in err and "examples/s" not in err  # piped: no progress bar
        assert f"Wrote {counts['sentences']} examples" in out
        converted = entities(tmp_path / output)
        assert len(converted) == counts["sentences"]
        per_label = Counter(label for ents in converted for _, label in ents)
        assert dict(per_label) == label_columns(counts)
        assert converted == original  # the same entities, example by example
    # The DocBin keeps the file's tokens: nothing is re-tokenized.
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(spacy.blank("en").vocab))
    assert [[t.text for t in doc] for doc in docs] == words
    assert sum(len(w) for w in words) == counts["tokens"]
    # The JSONL is span JSONL: text and character offsets that match the entity text.
    records = list(srsly.read_jsonl(tmp_path / "out.jsonl"))
    assert len(records) == counts["sentences"]
    for record, ents in zip(records, original):
        assert [(record["text"][s["start"]:s["end"]], s["label"]) for s in record["spans"]] == ents
    # A .spacy file is input too: .spacy -> .jsonl keeps every entity.
    code, out, err = run_cli("convert", "out.spacy", "again.jsonl", "--quiet", cwd=tmp_path)
    assert code == 0, out + err
    assert entities(tmp_path / "again.jsonl") == original


# convert, crafted data


def write_spans(path: Path, records: List[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    return path


def rec(text: str, *parts_labels) -> dict:
    spans = []
    for part, label in parts_labels:
        start = text.index(part)
        spans.append({"start": start, "end": start + len(part), "label": label})
    return {"text": text, "spans": spans}


GOOD = [
    rec("Alice lives in Paris.", ("Alice", "PERSON"), ("Paris", "GPE")),
    rec("Bob moved to New York City last May.", ("Bob", "PERSON"), ("New York City", "GPE")),
    rec("Nothing here."),
    rec("Chen met Olga in Tokyo.", ("Chen", "PERSON"), ("Olga", "PERSON"), ("Tokyo", "GPE")),
]


def test_converted_conll_keeps_its_tokens_in_spacy_corpus(tmp_path):
    """spacy.Corpus.v1 (what `spacy train` and `spacy evaluate` read .spacy files with) gives
    every converted WNUT-17 train sentence the tokens the reader gives it: CoNLL words have
    unknown spaces and the DocBin says so, as `spacy convert`'s do. Re-tokenized, 1,821 of
    the 3,394 sentences would change."""
    source = real_file("wnut17", "wnut17train.conll")
    nlp = spacy.blank("en")
    ours = [([t.text for t in eg.predicted], [(e.start, e.end, e.label_) for e in eg.reference.ents])
            for eg in NerCorpus(source)(nlp)]
    output = tmp_path / "train.spacy"
    assert convert_examples(NerCorpus(source)(nlp), output) == len(ours) == 3394
    theirs = [([t.text for t in eg.predicted], [(e.start, e.end, e.label_) for e in eg.reference.ents])
              for eg in Corpus(output)(nlp)]
    assert theirs == ours
    # The files' own reading agrees too, and the flag is what keeps the tokens.
    assert [([t.text for t in eg.predicted], [(e.start, e.end, e.label_) for e in eg.reference.ents])
            for eg in NerCorpus(output)(nlp)] == ours
    retokenized = sum([t.text for t in nlp.make_doc(" ".join(words))] != words for words, _ in ours)
    assert retokenized == 1821


def test_converted_span_records_keep_their_tokens_in_spacy_corpus(tmp_path):
    """Text records have known spaces: spacy.Corpus.v1 tokenizes the text again, with the
    same tokenizer to the same tokens."""
    source = write_spans(tmp_path / "in.jsonl", GOOD + [rec("Don't call O'Neil at 9:30!", ("O'Neil", "PERSON"))])
    nlp = spacy.blank("en")
    ours = [[t.text for t in eg.predicted] for eg in NerCorpus(source)(nlp)]
    convert_examples(NerCorpus(source)(nlp), tmp_path / "out.spacy")
    assert [[t.text for t in eg.predicted] for eg in Corpus(tmp_path / "out.spacy")(nlp)] == ours
    assert ["Do", "n't"] == ours[-1][:2]


def test_convert_jsonl_to_spacy_and_conll_to_jsonl_crafted(tmp_path):
    write_spans(tmp_path / "in.jsonl", GOOD)
    (tmp_path / "in.conll").write_text("Shaka\tB-PERSON\nKhan\tI-PERSON\nspoke\tO\n\nHi\tO\n", encoding="utf8")
    code, out, err = run_cli("convert", "in.jsonl", "out.spacy", cwd=tmp_path)
    assert code == 0, out + err
    expected = [[(r["text"][s["start"]:s["end"]], s["label"]) for s in r["spans"]] for r in GOOD]
    assert entities(tmp_path / "out.spacy") == expected
    # --to decides the format whatever the suffix.
    code, out, err = run_cli("convert", "in.conll", "out.txt", "--to", "jsonl", cwd=tmp_path)
    assert code == 0, out + err
    records = list(srsly.read_jsonl(tmp_path / "out.txt"))
    assert [r["text"].strip() for r in records] == ["Shaka Khan spoke", "Hi"]
    assert [[(r["text"][s["start"]:s["end"]], s["label"]) for s in r["spans"]] for r in records] == [
        [("Shaka Khan", "PERSON")], []]


def test_convert_misaligned_span_fails_unless_a_policy_is_given(tmp_path):
    bad = {"text": "I like London a lot.", "spans": [{"start": 7, "end": 11, "label": "GPE"}]}
    write_spans(tmp_path / "in.jsonl", [GOOD[0], bad])
    code, out, err = run_cli("convert", "in.jsonl", "out.jsonl", cwd=tmp_path)
    assert code == 2 and "in.jsonl:2:" in out + err, out + err
    assert not (tmp_path / "out.jsonl").exists()
    code, out, err = run_cli("convert", "in.jsonl", "out.jsonl", "--on-misaligned", "expand", cwd=tmp_path)
    assert code == 0, out + err
    assert entities(tmp_path / "out.jsonl")[1] == [("London", "GPE")]


@pytest.mark.parametrize("output", ["out.jsonl", "out.spacy"])
def test_failed_convert_leaves_the_existing_output_untouched(output, tmp_path):
    """Bad data on the last line: exit 2, the message names file:line, the old output is kept
    byte for byte and nothing else is left beside it."""
    lines = [json.dumps(r) for r in GOOD] + ['{"text": "Broken line", "spans": [{"start": 3, "end": 99, "label": "X"}]}']
    (tmp_path / "in.jsonl").write_text("\n".join(lines) + "\n", encoding="utf8")
    old = b"the previous conversion\n"
    (tmp_path / output).write_bytes(old)
    before = sorted(p.name for p in tmp_path.iterdir())
    code, out, err = run_cli("convert", "in.jsonl", output, cwd=tmp_path)
    assert code == 2, out + err
    assert f"in.jsonl:{len(lines)}:" in out + err
    assert "Traceback" not in err
    assert (tmp_path / output).read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_convert_bad_target_and_missing_input_exit_2(tmp_path):
    write_spans(tmp_path / "in.jsonl", GOOD)
    (tmp_path / "out.txt").write_text("keep", encoding="utf8")
    code, out, err = run_cli("convert", "in.jsonl", "out.txt", cwd=tmp_path)  # no --to, unknown suffix
    assert code == 2 and "--to" in out + err, out + err
    assert (tmp_path / "out.txt").read_text(encoding="utf8") == "keep"
    code, out, err = run_cli("convert", "in.jsonl", "out.jsonl", "--to", "xml", cwd=tmp_path)
    assert code == 2 and not (tmp_path / "out.jsonl").exists(), out + err
    code, out, err = run_cli("convert", "missing.conll", "out.jsonl", cwd=tmp_path)
    assert code == 2 and "missing.conll" in out + err and not (tmp_path / "out.jsonl").exists()


# labels


@pytest.fixture(scope="module")
def wnut_labels(tmp_path_factory):
    source = real_file("wnut17", "wnut17train.conll")
    cwd = tmp_path_factory.mktemp("labels")
    code, out, err = run_cli("labels", source, "--output", "labels.json", cwd=cwd)
    assert code == 0, out + err
    return {"source": source, "out": out, "err": err, "path": cwd / "labels.json",
            "counts": label_columns(published("wnut17", "wnut17train.conll"))}


def test_labels_counts_match_source(wnut_labels):
    assert labels_table(wnut_labels["out"]) == wnut_labels["counts"]
    assert "labels with fewer than" not in wnut_labels["out"] + wnut_labels["err"]  # all have 20 or more


def test_labels_json_initializes_ner_through_read_labels(wnut_labels):
    """The JSON loads with spaCy's own spacy.read_labels.v1 and initializes `ner` with exactly
    the corpus' labels, and the same moves as initializing from the examples themselves."""
    table = spacy.registry.readers.get("spacy.read_labels.v1")(wnut_labels["path"])
    source = wnut_labels["source"]
    nlp = spacy.blank("en")
    examples = list(NerCorpus(source, limit=50)(nlp))
    ner = nlp.add_pipe("ner")
    ner.initialize(lambda: examples, nlp=nlp, labels=table)
    assert set(ner.labels) == set(wnut_labels["counts"])
    # From every example, without the table: the same set of moves.
    nlp2 = spacy.blank("en")
    all_examples = list(NerCorpus(source)(nlp2))
    ner2 = nlp2.add_pipe("ner")
    ner2.initialize(lambda: all_examples, nlp=nlp2)
    assert set(ner.move_names) == set(ner2.move_names)
    # And spaCy's own config route: [initialize.components.ner.labels] with read_labels.v1.
    config = {"nlp": {"lang": "en", "pipeline": ["ner"]},
              "components": {"ner": {"factory": "ner"}},
              "initialize": {"components": {"ner": {"labels": {
                  "@readers": "spacy.read_labels.v1", "path": str(wnut_labels["path"])}}}}}
    nlp3 = spacy.util.load_model_from_config(spacy.util.Config(config), auto_fill=True)
    nlp3.initialize(lambda: examples)
    assert set(nlp3.get_pipe("ner").labels) == set(wnut_labels["counts"])


def test_labels_crafted_low_counts_and_failures(tmp_path):
    write_spans(tmp_path / "in.jsonl", GOOD)
    code, out, err = run_cli("labels", "in.jsonl", "--output", "labels.json", cwd=tmp_path)
    assert code == 0, out + err
    expected = Counter(s["label"] for r in GOOD for s in r["spans"])
    assert labels_table(out) == dict(expected)
    assert low_labels(out + err) == dict(expected)
    table = srsly.read_json(tmp_path / "labels.json")
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("ner")
    ner.initialize(lambda: NerCorpus(tmp_path / "in.jsonl")(nlp), nlp=nlp, labels=table)
    assert set(ner.labels) == set(expected)
    # Bad data: exit 2, the label file is not replaced.
    (tmp_path / "bad.conll").write_text("Bob\tB-PERSON\nsleeps\tX-FOO\n", encoding="utf8")
    code, out, err = run_cli("labels", "bad.conll", "--output", "labels.json", cwd=tmp_path)
    assert code == 2 and "bad.conll:2:" in out + err, out + err
    assert srsly.read_json(tmp_path / "labels.json") == table


# Progress bars


def run_on_terminal(args: List[str], cwd: Path):
    """Run the CLI in a subprocess (the terminal is the point) with stderr on a pseudo-terminal (100 columns): (returncode, stderr text)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    try:
        proc = subprocess.Popen([sys.executable, "-m", "spacy_ner_trainer", *map(str, args)], cwd=cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.stdout.read()
    proc.wait(timeout=600)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf8", "replace")


def has_progress_bar(stream: str) -> bool:
    return "\r" in stream.replace("\r\n", "\n") and bool(re.search(r"examples/s|it/s", stream))


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_convert_progress_bar_on_a_terminal_only(tmp_path):
    # The first 200 sentences: the bar is about the terminal, not the size of the file.
    text = real_file("ncbi-disease", "devel.tsv").read_text(encoding="utf8")
    source = tmp_path / "devel-200.tsv"
    source.write_text("\n\n".join(text.split("\n\n")[:200]) + "\n", encoding="utf8")
    code, err = run_on_terminal(["convert", source, "a.spacy"], tmp_path)
    assert code == 0 and has_progress_bar(err), repr(err[:500])
    code, err = run_on_terminal(["convert", source, "b.spacy", "--quiet"], tmp_path)
    assert code == 0 and not has_progress_bar(err), repr(err[:500])
    assert (tmp_path / "a.spacy").read_bytes() == (tmp_path / "b.spacy").read_bytes()
