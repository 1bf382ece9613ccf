"""`debug` (the CLI, in process): every bad span with file:line, label counts and low-count
warnings, sentence lengths, duplicates and conflicting annotations, train/dev overlap; on
crafted files with problems planted on known lines, and on the real WNUT-17 training data."""
import json
import logging
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
import spacy
from pipelines import run_cli

from spacy_ner_trainer import NerCorpus
from spacy_ner_trainer.debug import debug_data

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
LOW_COUNT = 20  # README: "Labels with fewer than 20 examples are warned about."



def low_labels(output: str) -> Dict[str, int]:
    """The labels the one low-count warning (labels.low_count_message) lists, wherever the
    command printed or logged it."""
    match = re.search(r"labels with fewer than \d+ examples: (.*?); the model", output)
    return {} if match is None else {label: int(n) for label, n in re.findall(r"(\S+) \((\d+)\)", match.group(1))}


def span(text: str, part: str, label: str, occurrence: int = 0, *, lead: int = 0, trail: int = 0) -> list:
    """[start, end, label] of `part` in `text`, widened by `lead`/`trail` characters."""
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(part, start + 1)
    return [start - lead, start + len(part) + trail, label]


def write_jsonl(path: Path, records: List[list]) -> Path:
    """Seed tuples, one a line: record i is on line i + 1."""
    path.write_text("".join(json.dumps([text, {"entities": ents}]) + "\n" for text, ents in records),
                    encoding="utf8")
    return path


def problem_lines(out: str, name: str) -> Dict[int, List[str]]:
    """Output lines that start with a problem marker and `name:LINE:`, by line number."""
    found: Dict[int, List[str]] = {}
    for line in out.splitlines():
        m = re.match(rf"^[✘⚠] {re.escape(name)}:(\d+): ", line)
        if m and " same text as " not in line:  # conflicts are listed apart
            found.setdefault(int(m.group(1)), []).append(line)
    return found


def labels_table(out: str) -> Dict[str, int]:
    """The "label / entities" table of the output."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == ["label", "entities"])
    counts = {}
    for line in lines[start + 2:]:
        cells = line.split()
        if len(cells) != 2 or not cells[1].isdigit():
            break
        counts[cells[0]] = int(cells[1])
    return counts


def length_stats(out: str) -> Dict[str, float]:
    m = re.search(r"Tokens per example: min (\S+), median (\S+), mean (\S+), max (\S+)", out)
    assert m, out
    return dict(zip(("min", "median", "mean", "max"), map(float, m.groups())))


def token_at(doc, char: int):
    return next(t for t in doc if t.idx <= char < t.idx + len(t))


# A crafted file with problems on known lines


@pytest.fixture(scope="module")
def bad_file(tmp_path_factory):
    """bad.jsonl, and what is planted on which line."""
    cwd = tmp_path_factory.mktemp("debug-bad")
    records, planted = [], {}

    def add(text, ents, kind=None, **info):
        records.append([text, ents])
        if kind:
            planted[len(records)] = dict(kind=kind, text=text, ents=ents, **info)

    t = "Alice lives in Paris."
    add(t, [span(t, "Alice", "PERSON"), span(t, "Paris", "GPE")])  # 1 good
    t = "I like London a lot."
    add(t, [span(t, "Lond", "GPE")], "misaligned", part="Lond")  # 2
    t = "Bob met Carol in Rome."
    add(t, [span(t, "Bob", "PERSON"), span(t, "Carol", "PERSON")])  # 3 good
    t = "New York City is big."
    add(t, [span(t, "New York", "GPE"), span(t, "York City", "GPE")], "overlap",
        parts=["New York", "York City"])  # 4
    t = "Maria flew to Berlin."
    add(t, [span(t, "Maria", "PERSON"), span(t, "Berlin", "GPE")])  # 5 good
    t = "Tom went to Oslo today."
    add(t, [span(t, "Oslo", "GPE", lead=1)], "whitespace", part=" Oslo", trimmed="Oslo")  # 6
    t = "We flew to Amsterdam yesterday."
    add(t, [span(t, "sterdam", "GPE")], "misaligned", part="sterdam")  # 7
    t = "Peter works in Madrid."
    add(t, [span(t, "Peter", "PERSON"), span(t, "Madrid", "GPE")])  # 8 good
    # 9: the same text as 8 with the same spans, listed in another order: a duplicate, no conflict
    add(t, [span(t, "Madrid", "GPE"), span(t, "Peter", "PERSON")])
    t = "Bob met Carol in Rome."
    add(t, [span(t, "Bob", "PERSON"), span(t, "Rome", "GPE")])  # 10: conflicts with 3
    t = "Chen and Olga visited Cairo."
    add(t, [span(t, "Che", "PERSON"), span(t, "lga", "PERSON")], "misaligned2", parts=["Che", "lga"])  # 11
    t = "Fatima likes Lima."
    add(t, [[6, 7, "GPE"]], "whitespace-only")  # 12: a span of one space
    t = "Anna lives in Tokyo now."
    add(t, [span(t, "Tokyo", "GPE", trail=1)], "whitespace", part="Tokyo ", trimmed="Tokyo")  # 13
    t = "Omar met Maria."
    add(t, [span(t, "Omar", "PERSON"), span(t, "Maria", "PERSON")])  # 14 good
    # 15..22: more misaligned spans than a summary would list, each on its own line
    for i, city in enumerate(["Lisbon", "Vienna", "Prague", "Dublin", "Warsaw", "Athens", "Zurich", "Bergen"]):
        t = f"Visitor {i} arrived in {city} at noon."
        add(t, [span(t, city[:-2], "GPE")], "misaligned", part=city[:-2])
    path = write_jsonl(cwd / "bad.jsonl", records)
    code, out, err = run_cli("debug", "bad.jsonl", cwd=cwd)
    return {"cwd": cwd, "path": path, "records": records, "planted": planted,
            "code": code, "out": out, "err": err}


def test_bad_file_exits_1(bad_file):
    assert bad_file["code"] == 1, bad_file["out"] + bad_file["err"]
    assert "Traceback" not in bad_file["err"]


def test_every_planted_problem_has_its_file_and_line(bad_file):
    found = problem_lines(bad_file["out"], "bad.jsonl")
    assert set(found) == set(bad_file["planted"]), (sorted(found), sorted(bad_file["planted"]))
    assert len(found[11]) == 2, "both misaligned spans of line 11 are listed"
    for number in (1, 3, 5, 8, 9, 14):
        assert number not in found  # good lines are not reported


def test_misaligned_spans_name_text_token_boundaries_and_fix(bad_file):
    nlp = spacy.blank("en")
    found = problem_lines(bad_file["out"], "bad.jsonl")
    for number, plant in bad_file["planted"].items():
        if not plant["kind"].startswith("misaligned"):
            continue
        doc = nlp.make_doc(plant["text"])
        parts = plant.get("parts") or [plant["part"]]
        for part, (start, end, _), line in zip(parts, plant["ents"], found[number]):
            assert line.startswith("✘"), line
            assert repr(part) in line, (part, line)
            # The token the span cuts, with its boundaries.
            cut = token_at(doc, start) if token_at(doc, start).idx != start else token_at(doc, end - 1)
            assert f"{cut.text!r} [{cut.idx}, {cut.idx + len(cut)}]" in line, line
            assert "on_misaligned" in line, line  # the suggested fix


def test_overlapping_spans_name_both_and_fix(bad_file):
    (number, plant), = [(n, p) for n, p in bad_file["planted"].items() if p["kind"] == "overlap"]
    line, = problem_lines(bad_file["out"], "bad.jsonl")[number]
    assert line.startswith("✘") and "overlap" in line
    for part, (start, end, _) in zip(plant["parts"], plant["ents"]):
        assert f"[{start}, {end}] {part!r}" in line, line
    assert "on_overlap" in line


def test_whitespace_bordered_spans_are_listed_with_the_trimmed_offsets(bad_file):
    found = problem_lines(bad_file["out"], "bad.jsonl")
    for number, plant in bad_file["planted"].items():
        if plant["kind"] == "whitespace":
            line, = found[number]
            start = plant["text"].index(plant["trimmed"])
            assert repr(plant["part"]) in line, line
            assert f"[{start}, {start + len(plant['trimmed'])}]" in line, line
            assert "whitespace" in line
        elif plant["kind"] == "whitespace-only":
            line, = found[number]
            assert line.startswith("✘") and "whitespace" in line, line


def test_duplicates_and_conflicts(bad_file):
    out = bad_file["out"]
    texts = [text for text, _ in bad_file["records"]]
    expected_duplicates = len(texts) - len(set(texts))
    assert re.search(rf"\b{expected_duplicates} duplicate examples", out), out
    conflicts = [line for line in out.splitlines() if "same text as" in line]
    assert len(conflicts) == 1, conflicts
    assert conflicts[0].startswith("✘ bad.jsonl:10:") and "bad.jsonl:3" in conflicts[0]


def test_bad_file_label_counts_and_low_count_warnings(bad_file):
    expected = Counter(label for _, ents in bad_file["records"] for *_, label in ents)
    assert labels_table(bad_file["out"]) == dict(expected)
    assert 0 < min(expected.values()) < LOW_COUNT <= max(expected.values())  # as crafted
    assert low_labels(bad_file["out"] + bad_file["err"]) == {label: n for label, n in expected.items() if n < LOW_COUNT}


# A clean file


@pytest.fixture(scope="module")
def clean_records():
    names = ["Alice", "Bob", "Maria", "Peter", "Chen", "Olga", "Fatima", "Tom", "Anna", "Omar", "Lena"]
    records = []
    for i, name in enumerate(names):
        other = names[(i + 3) % len(names)]
        t = f"{name} called {other} yesterday."
        records.append([t, [span(t, name, "PERSON"), span(t, other, "PERSON")]])
    for t, city in (("The bus to Paris left.", "Paris"), ("Rain fell on Lima all week long.", "Lima"),
                    ("Oslo is cold.", "Oslo")):
        records.append([t, [span(t, city, "GPE")]])
    return records


def test_clean_file_exits_0_with_stats(clean_records, tmp_path):
    write_jsonl(tmp_path / "clean.jsonl", clean_records)
    code, out, err = run_cli("debug", "clean.jsonl", cwd=tmp_path)
    assert code == 0, out + err
    assert problem_lines(out, "clean.jsonl") == {}
    assert f"clean.jsonl: {len(clean_records)} examples" in out
    counts = Counter(label for _, ents in clean_records for *_, label in ents)
    assert counts["PERSON"] >= LOW_COUNT > counts["GPE"]  # as crafted
    assert labels_table(out) == dict(counts)
    assert low_labels(out + err) == {"GPE": counts["GPE"]}  # not PERSON: enough of them
    nlp = spacy.blank("en")
    lengths = [len(nlp.make_doc(text)) for text, _ in clean_records]
    stats = length_stats(out)
    assert stats["min"] == min(lengths) and stats["max"] == max(lengths)
    assert stats["median"] == statistics.median(lengths)
    assert stats["mean"] == pytest.approx(statistics.fmean(lengths), abs=0.05)
    assert re.search(r"\b0 duplicate examples", out)
    assert "same text as" not in out


def test_model_tokenizer_decides_alignment(tmp_path):
    """`--model`: spans are checked against that pipeline's tokenizer, not a blank one's."""
    nlp = spacy.blank("en")
    nlp.tokenizer.add_special_case("foobar", [{"ORTH": "foo"}, {"ORTH": "bar"}])
    nlp.to_disk(tmp_path / "tok")
    t = "I like foobar a lot."
    write_jsonl(tmp_path / "foo.jsonl", [[t, [span(t, "foo", "THING")]]])
    code, out, err = run_cli("debug", "foo.jsonl", cwd=tmp_path)
    assert code == 1 and list(problem_lines(out, "foo.jsonl")) == [1], out + err
    code, out, err = run_cli("debug", "foo.jsonl", "--model", "tok", cwd=tmp_path)
    assert code == 0 and problem_lines(out, "foo.jsonl") == {}, out + err


def test_directory_json_array_and_conll_locations(tmp_path):
    """Locations in a directory: each file by its path, a JSON array by each record's first line."""
    data = tmp_path / "data"
    data.mkdir()
    t1, t2, t3 = "Alice lives in Paris.", "I like London a lot.", "New York City is big."
    array = ("[\n"
             f"  [{json.dumps(t1)}, {{\"entities\": [{json.dumps(span(t1, 'Alice', 'PERSON'))}]}}],\n"
             f"  [{json.dumps(t2)},\n"
             f"   {{\"entities\": [{json.dumps(span(t2, 'Londo', 'GPE'))}]}}],\n"
             f"  [{json.dumps(t3)}, {{\"entities\": [{json.dumps(span(t3, 'New York', 'GPE'))},\n"
             f"     {json.dumps(span(t3, 'York City', 'GPE'))}]}}]\n"
             "]\n")
    (data / "a.json").write_text(array, encoding="utf8")
    (data / "b.conll").write_text("Bob\tB-PERSON\nsleeps\tO\n\nCarol\tB-PERSON\nruns\tO\n", encoding="utf8")
    t4 = "We love London dearly."
    write_jsonl(data / "c.jsonl", [[t1, [span(t1, "Alice", "PERSON")]], [t4, [span(t4, "ondon", "GPE")]]])
    code, out, err = run_cli("debug", "data", cwd=tmp_path)
    assert code == 1, out + err
    assert list(problem_lines(out, str(Path("data", "a.json")))) == [3, 5], out
    assert list(problem_lines(out, str(Path("data", "c.jsonl")))) == [2], out
    assert problem_lines(out, str(Path("data", "b.conll"))) == {}
    assert "data: 7 examples" in out
    # t1 is in a.json and in c.jsonl, with the same annotations: a duplicate, no conflict.
    assert re.search(r"\b1 duplicate examples", out) and "same text as" not in out


def test_a_bad_record_does_not_hide_the_problems_after_it(tmp_path):
    """debug lists every problem: a record with offsets out of range on line 2 is reported,
    and the misaligned span on line 4 of the same file is still found."""
    t1, t2, t3, t4 = ("Alice lives in Paris.", "Bob met Carol.", "Tom went to Rome.", "I like London a lot.")
    write_jsonl(tmp_path / "mixed.jsonl", [
        [t1, [span(t1, "Alice", "PERSON")]],
        [t2, [[8, 40, "PERSON"]]],
        [t3, [span(t3, "Tom", "PERSON")]],
        [t4, [span(t4, "Lond", "GPE")]],
    ])
    code, out, err = run_cli("debug", "mixed.jsonl", cwd=tmp_path)
    assert code == 1, out + err
    found = problem_lines(out, "mixed.jsonl")
    assert 2 in found, out
    assert 4 in found, f"the misaligned span on line 4 is not listed:\n{out}"


def test_dev_overlap(clean_records, tmp_path):
    train = clean_records[:8]
    t = "Lena flew home."
    dev = [clean_records[2], [t, [span(t, "Lena", "PERSON")]], clean_records[5], clean_records[7]]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "dev.jsonl", dev)
    shared = [i + 1 for i, record in enumerate(dev) if record[0] in {text for text, _ in train}]
    code, out, err = run_cli("debug", "train.jsonl", "--dev", "dev.jsonl", cwd=tmp_path)
    assert code == 0, out + err
    # The summary may be wrapped over several lines: read it as one.
    m = re.search(r"(\d+) of (\d+) dev examples are also in the training data(?: \(first: ([^)]*)\))?",
                  " ".join(out.split()))
    assert m, out
    assert (int(m.group(1)), int(m.group(2))) == (len(shared), len(dev)), m.group(0)
    assert m.group(3).split(", ") == [f"dev.jsonl:{number}" for number in shared], m.group(0)
    # No overlap: said so.
    write_jsonl(tmp_path / "dev2.jsonl", [dev[1]])
    code, out, err = run_cli("debug", "train.jsonl", "--dev", "dev2.jsonl", cwd=tmp_path)
    assert code == 0 and "0 of 1 dev examples are also in the training data" in out, out + err


def test_dev_overlap_does_not_depend_on_the_file_format(tmp_path):
    """The same sentences as CoNLL (train) and as span JSONL (dev, written by `convert` from
    that very file) are the same examples: all of dev overlaps train."""
    (tmp_path / "train.conll").write_text(
        "Alice\tB-PERSON\nlives\tO\nin\tO\nParis\tB-GPE\n.\tO\n\nBob\tB-PERSON\nsleeps\tO\n.\tO\n",
        encoding="utf8")
    code, out, err = run_cli("convert", "train.conll", "dev.jsonl", cwd=tmp_path)
    assert code == 0, out + err
    code, out, err = run_cli("debug", "train.conll", "--dev", "dev.jsonl", cwd=tmp_path)
    assert "2 of 2 dev examples are also in the training data" in " ".join(out.split()), out + err


def test_quiet_and_piped_output_have_no_progress_bar(bad_file):
    code, out, err = run_cli("debug", "bad.jsonl", "--quiet", cwd=bad_file["cwd"])
    assert code == 1
    for stream in (err, bad_file["err"]):
        assert "\r" not in stream and "examples/s" not in stream and "it/s" not in stream, stream


# Real data: WNUT-17 train


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


def read_sentences(path: Path) -> List[Tuple[int, Tuple[str, ...], Tuple[str, ...]]]:
    """(first line, tokens, tags) of each sentence of a token<TAB>tag file; sentences end at
    empty or whitespace-only lines (as SOURCE.md counts them)."""
    sentences, tokens, tags, first = [], [], [], 0
    with path.open(encoding="utf8") as file_:
        for number, line in enumerate(file_, 1):
            if not line.strip():
                if tokens:
                    sentences.append((first, tuple(tokens), tuple(tags)))
                tokens, tags = [], []
                continue
            if not tokens:
                first = number
            token, tag = line.rstrip("\n").split("\t")
            tokens.append(token)
            tags.append(tag)
    if tokens:
        sentences.append((first, tuple(tokens), tuple(tags)))
    return sentences


@pytest.fixture(scope="module")
def wnut_debug(tmp_path_factory):
    train = DATA_DIR / "wnut17" / "wnut17train.conll"
    dev = DATA_DIR / "wnut17" / "emerging.dev.conll"
    if not train.is_file() or not dev.is_file():
        pytest.skip(f"the real corpus files {train} and {dev} are not available")
    code, out, err = run_cli("debug", train, "--dev", dev, cwd=tmp_path_factory.mktemp("wnut"))
    return {"train": train, "dev": dev, "code": code, "out": out, "err": err,
            "sentences": read_sentences(train)}


def test_wnut_train_counts_match_source(wnut_debug):
    counts = published("wnut17", "wnut17train.conll")
    out = wnut_debug["out"]
    assert f"{wnut_debug['train']}: {counts['sentences']} examples" in out
    labels = labels_table(out)
    assert labels == {label: counts[label] for label in labels}
    assert sum(labels.values()) == counts["entities"]
    assert "labels with fewer than" not in out + wnut_debug["err"]  # every label has 20 or more
    stats = length_stats(out)
    assert stats["mean"] == pytest.approx(counts["tokens"] / counts["sentences"], abs=0.05)
    lengths = [len(tokens) for _, tokens, _ in wnut_debug["sentences"]]
    assert len(lengths) == counts["sentences"] and sum(lengths) == counts["tokens"]
    assert (stats["min"], stats["median"], stats["max"]) == (min(lengths), statistics.median(lengths), max(lengths))
    assert problem_lines(out, str(wnut_debug["train"])) == {}  # token files cannot be misaligned


def test_wnut_train_conflicting_annotations(wnut_debug):
    """Every reported conflict is two sentences with the same tokens and other tags, and every
    such sentence is reported (compared with the first sentence of that text)."""
    out, train = wnut_debug["out"], str(wnut_debug["train"])
    by_line = {first: (tokens, tags) for first, tokens, tags in wnut_debug["sentences"]}
    pattern = re.compile(rf"^✘ {re.escape(train)}:(\d+): same text as {re.escape(train)}:(\d+) ")
    reported = [tuple(map(int, m.groups())) for m in map(pattern.match, out.splitlines()) if m]
    assert reported, "WNUT-17 train has sentences annotated two ways; none was reported"
    for second, first in reported:
        assert first in by_line and second in by_line, (first, second)
        assert by_line[first][0] == by_line[second][0]
        assert by_line[first][1] != by_line[second][1]
    # Every entity starts with B- (SOURCE.md), so equal tags mean equal annotations.
    seen, expected, duplicates = {}, set(), 0
    for first, tokens, tags in wnut_debug["sentences"]:
        if tokens in seen:
            duplicates += 1
            if seen[tokens][1] != tags:
                expected.add((first, seen[tokens][0]))
        else:
            seen[tokens] = (first, tags)
    assert set(reported) == expected
    assert re.search(rf"\b{duplicates} duplicate examples", out)
    assert wnut_debug["code"] == 1  # conflicts are errors


def test_wnut_train_dev_overlap(wnut_debug):
    train_texts = {tokens for _, tokens, _ in wnut_debug["sentences"]}
    dev = read_sentences(wnut_debug["dev"])
    counts = published("wnut17", "emerging.dev.conll")
    assert len(dev) == counts["sentences"]
    shared = [first for first, tokens, _ in dev if tokens in train_texts]
    assert f"{len(shared)} of {len(dev)} dev examples are also in the training data" in wnut_debug["out"]


# debug_data itself: what the reader skips, label filters, the reader's policies


def write_records(path: Path, records: List[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    return path


def test_debug_data_reports_rejected_and_ignored_records_as_the_reader_logs_them(tmp_path, caplog):
    path = write_records(tmp_path / "train.jsonl", [
        {"text": "Ann left.", "spans": [{"start": 0, "end": 3, "label": "PER"}]},
        {"text": "Bob left.", "spans": [{"start": 0, "end": 3, "label": "PER"}], "answer": "reject"},
        {"text": "Cy left.", "spans": [], "answer": "accept"},
        {"text": "Di left.", "spans": [], "answer": "ignore"},
    ])
    report = debug_data(spacy.blank("en"), path)
    assert report.n_examples == 2 and report.labels == {"PER": 1}
    assert report.skipped == [f'records with "answer": "reject" or "ignore" skipped: 2 ({path}:2; {path}:4)']
    caplog.set_level(logging.WARNING, logger="spacy.ner_trainer")
    list(NerCorpus(path)(spacy.blank("en")))
    (logged,) = [r.getMessage() for r in caplog.records if r.name == "spacy.ner_trainer"]
    assert report.skipped[0] in logged  # the same words the reader logs


def test_debug_data_says_which_labels_the_data_has_when_a_filter_matches_nothing(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [("Ann met Bob in Rome.", [[0, 3, "per"], [15, 19, "GPE"]])])
    nlp = spacy.blank("en")
    report = debug_data(nlp, path, labels=["Foo"], label_map={"per": "PER"})
    assert report.labels == {} and report.data_labels == {"PER": 1, "GPE": 1}
    assert report.labels_unmatched == "no entity has label Foo; the data has: GPE, PER"
    assert report.nothing_matched and not report.ok
    partial = debug_data(nlp, path, labels=["PER", "Foo"], label_map={"per": "PER"})
    assert partial.labels == {"PER": 1} and partial.ok
    assert partial.labels_unmatched == "no entity has label Foo; the data has: GPE, PER"
    assert debug_data(nlp, path).labels_unmatched is None


def test_debug_data_lists_what_a_lenient_policy_handles_as_warnings(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [
        ("I like Indiana.", [[7, 11, "GPE"]]),
        ("I like New York City.", [[7, 20, "GPE"], [11, 15, "CITY"]]),
    ])
    nlp = spacy.blank("en")
    strict = debug_data(nlp, path)
    assert [p.severity for p in strict.problems] == ["error", "error"] and not strict.ok
    lenient = debug_data(nlp, path, on_misaligned="expand", on_overlap="longest")
    assert [p.severity for p in lenient.problems] == ["warning", "warning"] and lenient.ok
    assert lenient.labels == {"GPE": 2, "CITY": 1}
    assert "--on-misaligned expand" in str(strict.problems[0]) and "--on-overlap longest" in str(strict.problems[1])


def test_debug_data_lists_odd_labels_and_rare_labels(tmp_path):
    path = write_jsonl(tmp_path / "train.jsonl", [("Ann left.", [[0, 3, "<PER>"]])] * 2)
    report = debug_data(spacy.blank("en"), path)
    (odd,) = report.problems
    assert odd.severity == "warning" and odd.line == 1 and "'<PER>'" in str(odd)
    assert report.low_labels == {"<PER>": 2}
    assert report.low_count_message == f"{path}: labels with fewer than 20 examples: <PER> (2); the model will hardly learn them"
