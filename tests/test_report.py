"""The HTML report of `evaluate`, `verify` and `train` (`--html`), and `evaluate`'s scores and
confusion summary: checked in the file itself and in headless Chromium with networking off.

A tiny model is trained once through the CLI; the gold set it is evaluated on is made in the
test from the model's own predictions, with one label changed (wrong label), one prediction
left out of the gold (spurious) and one gold entity the model does not predict (missed), so
that the expected counts are known by construction."""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import spacy

from spacy_ner_trainer import NerCorpus
from spacy_ner_trainer.evaluate import evaluate

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
N_EPOCHS = 12
STATUS_WORDS = ("missed", "spurious", "wrong label")

_NAMES = ["Alice", "Bob", "Maria", "Peter", "Chen", "Olga", "Fatima", "Tom", "Anna", "Omar"]
_CITIES = ["Paris", "London", "Berlin", "Madrid", "Tokyo", "Cairo", "Lima", "Oslo", "Rome", "Delhi"]
_FRAMES = ["{p} lives in {c}.", "{p} moved to {c}.", "{p} visited {c} last year.", "{p} works in {c}."]


def run_cli(*args, cwd):
    """`python -m spacy_ner_trainer ARGS` in `cwd`: (returncode, stdout, stderr), colours removed."""
    proc = subprocess.run(
        [sys.executable, "-m", "spacy_ner_trainer", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, encoding="utf8", timeout=600,
    )
    return proc.returncode, ANSI.sub("", proc.stdout), ANSI.sub("", proc.stderr)


def person_city(frame: str, person: str, city: str) -> dict:
    text = frame.format(p=person, c=city)
    p, c = text.index(person), text.index(city)
    return {"text": text, "spans": [{"start": p, "end": p + len(person), "label": "PERSON"},
                                    {"start": c, "end": c + len(city), "label": "GPE"}]}


def write_jsonl(path: Path, records: List[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    return path


# A minimal DOM, from the file or from Chromium's --dump-dom.

_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: Dict[str, Optional[str]], parent: Optional["Node"]):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: List[object] = []  # Nodes and strings

    def text(self, skip=lambda node: False) -> str:
        return "".join(c if isinstance(c, str) else c.text(skip) for c in self.children
                       if isinstance(c, str) or not skip(c))

    def find_all(self, tag: str, **attrs) -> List["Node"]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and all(child.attrs.get(k) == v for k, v in attrs.items()):
                    found.append(child)
                found.extend(child.find_all(tag, **attrs))
        return found

    def elements(self) -> List["Node"]:
        return [c for c in self.children if isinstance(c, Node)]


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = self.current = Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in _VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse_html(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    builder.close()
    return builder.root


def squash(text: str) -> str:
    return "".join(text.split())


def table_rows(root: Node, first_header: str) -> Dict[str, List[str]]:
    """The table whose first header cell is `first_header`: first cell -> the row's cells."""
    for table in root.find_all("table"):
        headers = [th.text().strip() for th in table.find_all("th")]
        if headers and headers[0] == first_header:
            rows = {}
            for tr in table.find_all("tr"):
                cells = [td.text().strip() for td in tr.find_all("td")]
                if cells:
                    rows[cells[0]] = cells
            return rows
    raise AssertionError(f"no table with first header {first_header!r}")


def marks(block: Node) -> List[dict]:
    """The displaCy entity marks of one rendering: text, label line, background colour."""
    out = []
    for mark in block.find_all("mark"):
        style = mark.attrs.get("style") or ""
        colour = re.search(r"background:\s*([^;]+)", style)
        out.append({
            "text": mark.text(skip=lambda n: n.tag == "span").strip(),
            "label": " ".join(mark.find_all("span")[0].text().split()),
            "colour": colour.group(1).strip().lower() if colour else None,
        })
    return out


def external_references(text: str) -> List[str]:
    """Every src/href-like attribute or CSS url()/@import that points off the page."""
    refs = []
    for node in _walk(parse_html(text)):
        for name, value in node.attrs.items():
            if name in ("src", "href", "xlink:href", "srcset", "data", "poster", "action") and value:
                if re.match(r"\s*(https?:)?//", value):
                    refs.append(f"{node.tag} {name}={value}")
    refs += re.findall(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)", text)
    refs += re.findall(r"@import[^;]*", text)
    return refs


def _walk(node: Node):
    for child in node.elements():
        yield child
        yield from _walk(child)


# The model and the evaluation data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`train train.jsonl --dev dev.jsonl -n 12 --output model --html train.html`, once."""
    cwd = tmp_path_factory.mktemp("report")
    train = [person_city(_FRAMES[i % 3], p, c) for i, (p, c) in enumerate(zip(_NAMES[:8], _CITIES[:8]))]
    train += [person_city(_FRAMES[3], p, c) for p, c in zip(_NAMES[:4], reversed(_CITIES[:8]))]
    dev = [person_city(_FRAMES[i % 4], p, c) for i, (p, c) in enumerate(zip(_NAMES[8:], _CITIES[8:]))]
    write_jsonl(cwd / "train.jsonl", train)
    write_jsonl(cwd / "dev.jsonl", dev)
    code, out, err = run_cli("train", "train.jsonl", "--dev", "dev.jsonl", "-n", N_EPOCHS, "--seed", 0,
                             "--output", "model", "--html", "train.html", cwd=cwd)
    assert code == 0, out + err
    return {"cwd": cwd, "model": cwd / "model", "html": cwd / "train.html", "out": out}


EVAL_TEXTS = [
    "Alice lives in Paris.",
    "Bob moved to London.",
    "Maria visited Berlin last year.",
    "Peter works in Madrid and eats a mango.",
    "Chen lives in Tokyo.",
    "Tom & <Jerry> visited Oslo with a papaya.",
    "Olga moved to Cairo.",
]


@pytest.fixture(scope="module")
def gold(trained):
    """gold.jsonl, made from the model's predictions, and what evaluation must find there."""
    nlp = spacy.load(trained["model"])
    docs = list(nlp.pipe(EVAL_TEXTS))
    predicted = [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs]
    with_ents = [i for i, ents in enumerate(predicted) if ents]
    assert len(with_ents) >= 3, f"the tiny model should find entities; it predicted {predicted}"
    wrong_i, spurious_i = with_ents[0], with_ents[1]
    golds = [list(ents) for ents in predicted]
    # A wrong label: same boundaries, another label.
    start, end, label = golds[wrong_i][0]
    other = "GPE" if label != "GPE" else "PERSON"
    golds[wrong_i][0] = (start, end, other)
    # A spurious prediction: the gold lacks it.
    removed = golds[spurious_i].pop(0)
    # Missed entities: a FRUIT on a word no prediction touches, in every text that has one.
    missed_i = []
    for i, doc in enumerate(docs):
        if i in (wrong_i, spurious_i):
            continue
        free = [t for t in doc if t.is_alpha and t.ent_iob_ == "O" and t.lower_ in ("mango", "papaya")]
        if free:
            golds[i].append((free[0].idx, free[0].idx + len(free[0]), "FRUIT"))
            missed_i.append(i)
    assert missed_i, "the model predicts the fruit words as entities; choose other texts"
    records = [{"text": text, "spans": [{"start": s, "end": e, "label": lab} for s, e, lab in sorted(ents)]}
               for text, ents in zip(EVAL_TEXTS, golds)]
    path = write_jsonl(trained["cwd"] / "gold.jsonl", records)
    # What evaluation must report, by construction.
    support = Counter(lab for ents in golds for _, _, lab in ents)
    found = Counter(lab for i, ents in enumerate(golds) for s, e, lab in ents
                    if (s, e, lab) in predicted[i])
    expected = {
        "support": dict(support),
        "found": dict(found),
        "missed": {"FRUIT": len(missed_i)},
        "wrong_label": {other: {label: 1}},
        "spurious": {removed[2]: 1},
        "mismatched": sorted({wrong_i, spurious_i, *missed_i}),
    }
    examples = list(NerCorpus(path)(spacy.blank("en")))
    return {"path": path, "nlp": nlp, "examples": examples, "expected": expected, "golds": golds}


@pytest.fixture(scope="module")
def evaluated(trained, gold):
    """`evaluate model gold.jsonl --json ev.json --html ev.html`, once."""
    code, out, err = run_cli("evaluate", "model", "gold.jsonl", "--json", "ev.json", "--html", "ev.html",
                             cwd=trained["cwd"])
    assert code == 0, out + err
    html = (trained["cwd"] / "ev.html").read_text(encoding="utf8")
    data = json.loads((trained["cwd"] / "ev.json").read_text(encoding="utf8"))
    return {"out": out, "html": html, "json": data, "path": trained["cwd"] / "ev.html",
            "evaluation": evaluate(gold["nlp"], gold["examples"])}


# evaluate: scores and confusion


def test_construction_gives_every_kind_of_error(gold, evaluated):
    """The in-process evaluation finds exactly what the gold set was built to contain."""
    evaluation, expected = evaluated["evaluation"], gold["expected"]
    assert {label: s["support"] for label, s in evaluation.per_label.items()} == expected["support"]
    for label, row in evaluation.confusion.items():
        assert row["found"] == expected["found"].get(label, 0), label
        assert row["missed"] == expected["missed"].get(label, 0), label
        assert row["wrong_label"] == expected["wrong_label"].get(label, {}), label
        assert row["boundary"] == 0, label
    assert evaluation.spurious == expected["spurious"]
    assert [m["text"] for m in evaluation.mismatches] == [EVAL_TEXTS[i] for i in expected["mismatched"]]


def test_evaluate_json_has_scores_and_confusion(gold, evaluated):
    data, evaluation, expected = evaluated["json"], evaluated["evaluation"], gold["expected"]
    assert data["n_examples"] == len(EVAL_TEXTS)
    assert {label: s["support"] for label, s in data["per_label"].items()} == expected["support"]
    for label, scores in evaluation.per_label.items():
        for key in ("p", "r", "f"):
            assert data["per_label"][label][key] == pytest.approx(scores[key])
    assert data["confusion"] == evaluation.confusion
    assert data["spurious"] == expected["spurious"]
    assert data["n_mismatches"] == len(expected["mismatched"])
    assert [m["text"] for m in data["mismatches"]] == [EVAL_TEXTS[i] for i in expected["mismatched"]]


def test_evaluate_prints_per_label_table_and_confusion(gold, evaluated):
    out, expected = evaluated["out"], gold["expected"]
    lines = out.splitlines()
    for label, n in expected["support"].items():
        assert any(line.split()[:1] == [label] and line.split()[-1] == str(n) for line in lines), (label, out)
    confusion = out.split("Confusion", 1)[1]
    rows = {line.split()[0]: line.split() for line in confusion.splitlines()
            if line.split() and line.split()[0] in expected["support"] | expected["spurious"]}
    for label in expected["support"]:
        row = rows[label]
        assert row[1] == str(expected["found"].get(label, 0)), row
        assert row[2] == str(expected["missed"].get(label, 0)), row
        assert row[-1] == str(expected["spurious"].get(label, 0)), row
    (other, wrong), = expected["wrong_label"].items()
    (predicted_label, n), = wrong.items()
    assert f"{predicted_label} {n}" in " ".join(rows[other]), rows[other]


# The HTML file


def check_report_dom(root: Node, evaluation, expected_mismatched_texts: List[str]) -> None:
    """The per-label table, the confusion summary and every mismatched example, twice."""
    order = [(n.tag, n.attrs.get("id") or "") for n in _walk(root)]
    tables = [i for i, (tag, _) in enumerate(order) if tag == "table"]
    first_example = next((i for i, (_, id_) in enumerate(order) if id_.startswith("example-")), len(order))
    assert len(tables) >= 2 and max(tables[:2]) < first_example, "the tables are not on top"
    scores = table_rows(root, "label")
    for label, s in evaluation.per_label.items():
        assert label in scores, f"label {label} is not in the score table"
        assert scores[label][-1] == str(s["support"]), scores[label]
    assert scores["ALL"][-1] == str(sum(s["support"] for s in evaluation.per_label.values()))
    confusion = table_rows(root, "gold label")
    assert set(confusion) == set(evaluation.confusion) | set(evaluation.spurious)
    for label, row in evaluation.confusion.items():
        cells = confusion[label]
        assert cells[1] == str(row["found"]) and cells[2] == str(row["missed"]), cells
        for other, n in row["wrong_label"].items():
            assert f"{other} {n}" in " ".join(cells), cells
    for label, n in evaluation.spurious.items():
        assert confusion[label][-1] == str(n), confusion[label]

    examples = [div for div in root.find_all("div") if (div.attrs.get("id") or "").startswith("example-")]
    assert len(examples) == len(evaluation.mismatches) == len(expected_mismatched_texts)
    colours: Dict[str, set] = {}
    for i, (div, mismatch, text) in enumerate(zip(examples, evaluation.mismatches, expected_mismatched_texts), 1):
        assert mismatch["text"] == text
        titles = [h3.text().strip() for h3 in div.find_all("h3")]
        renderings = div.find_all("div", **{"class": "entities"})
        assert len(renderings) == 2, f"example {i} is not rendered twice"
        assert "gold" in titles[0] and "predict" in titles[1], titles  # gold above prediction
        for rendering, ents in zip(renderings, (mismatch["gold"], mismatch["predicted"])):
            # The whole text is there (entity label tags aside), escaped correctly.
            shown = rendering.text(skip=lambda n: n.tag == "span")
            assert squash(shown) == squash(text), (shown, text)
            got = marks(rendering)
            assert [m["text"] for m in got] == [text[s:e] for s, e, _, _ in ents]
            for m, (_, _, label, status) in zip(got, ents):
                assert label in m["label"], (m, label)
                word = {"missed": "missed", "spurious": "spurious", "wrong_label": "wrong label"}.get(status)
                if word:
                    assert word in m["label"], (m, status)
                else:
                    assert not any(w in m["label"] for w in STATUS_WORDS), (m, status)
                colours.setdefault(status, set()).add(m["colour"])
    # Missed, spurious and wrongly-labelled entities are marked differently from each other
    # and from the correct ones.
    for status in ("missed", "spurious", "wrong_label"):
        assert len(colours.get(status, ())) == 1, (status, colours)
    distinct = [next(iter(colours[s])) for s in ("missed", "spurious", "wrong_label")]
    correct = colours.get("found", set()) | colours.get("correct", set())
    assert len(set(distinct)) == 3 and not set(distinct) & correct, colours


def test_evaluate_html_file(gold, evaluated):
    root = parse_html(evaluated["html"])
    texts = [EVAL_TEXTS[i] for i in gold["expected"]["mismatched"]]
    check_report_dom(root, evaluated["evaluation"], texts)


def test_html_is_self_contained(trained, evaluated):
    for text in (evaluated["html"], trained["html"].read_text(encoding="utf8")):
        assert external_references(text) == []
        root = parse_html(text)
        assert not root.find_all("script") and not root.find_all("link") and not root.find_all("img")
        assert root.find_all("style"), "the CSS is inline"


def test_verify_html(trained, gold, tmp_path):
    # Recall 1.0 cannot be reached (gold entities are missed by construction): verification
    # fails, and the report that says why is still written.
    code, out, err = run_cli("verify", trained["model"], gold["path"], "--min-recall", "1.0",
                             "--html", "verify.html", cwd=tmp_path)
    assert code == 1, out + err
    html = (tmp_path / "verify.html").read_text(encoding="utf8")
    assert external_references(html) == []
    evaluation = evaluate(gold["nlp"], gold["examples"])
    check_report_dom(parse_html(html), evaluation, [EVAL_TEXTS[i] for i in gold["expected"]["mismatched"]])
    assert not parse_html(html).find_all("svg"), "verify has no training curves"


def polylines(html: str) -> List[List[tuple]]:
    root = parse_html(html)
    svgs = root.find_all("svg")
    assert len(svgs) == 1, f"{len(svgs)} <svg> elements"
    lines = svgs[0].find_all("polyline")
    return [[tuple(float(v) for v in point.split(",")) for point in line.attrs["points"].split()]
            for line in lines]


def epoch_table(out: str) -> List[List[float]]:
    """The rows train prints after each epoch: epoch, loss[, dev P, dev R, dev F]."""
    rows = []
    for line in out.splitlines():
        cells = line.split()
        if cells and cells[0].isdigit() and all(re.fullmatch(r"-?\d+(\.\d+)?", c) for c in cells[1:]) \
                and len(cells) in (2, 5):
            rows.append([float(c) for c in cells])
    return rows


def check_plotted(values: List[float], ys: List[float]) -> None:
    """The y coordinates are the values on an axis pointing up: y = a - b * value, b > 0."""
    lo, hi = values.index(min(values)), values.index(max(values))
    assert values[hi] > values[lo], "nothing to compare: every value is the same"
    slope = (ys[hi] - ys[lo]) / (values[hi] - values[lo])
    assert slope < 0, (values, ys)
    for value, y in zip(values, ys):
        assert y == pytest.approx(ys[lo] + slope * (value - values[lo]), abs=1.0), (values, ys)


def test_train_html_has_loss_and_dev_f_curves(trained, gold):
    html = trained["html"].read_text(encoding="utf8")
    curves = polylines(html)
    assert len(curves) == 2, "one curve for the loss, one for dev F"
    for points in curves:
        assert len(points) == N_EPOCHS
        xs = [x for x, _ in points]
        assert xs == sorted(xs) and len(set(xs)) == N_EPOCHS  # one point an epoch, left to right
    # The curves plot what train printed each epoch: the loss, and dev F.
    rows = epoch_table(trained["out"])
    assert [row[0] for row in rows] == list(range(1, N_EPOCHS + 1)), trained["out"]
    losses, dev_f = [row[1] for row in rows], [row[4] for row in rows]
    fits = []
    for first, second in (curves, curves[::-1]):
        try:
            check_plotted(losses, [y for _, y in first])
            check_plotted(dev_f, [y for _, y in second])
            fits.append(True)
        except AssertionError:
            fits.append(False)
    assert any(fits), (losses, dev_f, curves)
    assert "dev F" in parse_html(html).text()
    # The report's tables are the verification on the training data.
    train_examples = list(NerCorpus(trained["cwd"] / "train.jsonl")(spacy.blank("en")))
    evaluation = evaluate(gold["nlp"], train_examples)
    scores = table_rows(parse_html(html), "label")
    for label, s in evaluation.per_label.items():
        assert scores[label][-1] == str(s["support"])


def test_train_html_without_dev_has_only_the_loss_curve(trained, tmp_path):
    shutil.copy(trained["cwd"] / "train.jsonl", tmp_path / "train.jsonl")
    code, out, err = run_cli("train", "train.jsonl", "-n", 3, "--min-recall", "0", "--html", "t.html",
                             "--quiet", cwd=tmp_path)
    assert code == 0, out + err
    html = (tmp_path / "t.html").read_text(encoding="utf8")
    curves = polylines(html)
    assert len(curves) == 1 and len(curves[0]) == 3
    assert "dev F" not in parse_html(html).text()


# Real data


@pytest.fixture(scope="module")
def evaluated_real(trained):
    dev = DATA_DIR / "wnut17" / "emerging.dev.conll"
    if not dev.is_file():
        pytest.skip(f"the real corpus file {dev} is not available")
    code, out, err = run_cli("evaluate", "model", dev, "--json", "wnut.json", "--html", "wnut.html", "-q",
                             cwd=trained["cwd"])
    assert code == 0, out + err
    assert "\r" not in err and "examples/s" not in err  # piped: no progress bar
    return {
        "json": json.loads((trained["cwd"] / "wnut.json").read_text(encoding="utf8")),
        "html": (trained["cwd"] / "wnut.html").read_text(encoding="utf8"),
        "source": (DATA_DIR / "wnut17" / "SOURCE.md").read_text(encoding="utf8"),
    }


def published(source_md: str, file: str) -> Dict[str, int]:
    """The row of SOURCE.md's "Files" table for `file`: column name -> number."""
    lines = [line for line in source_md.splitlines() if line.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    for line in lines[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == file:
            return {h: int(c.replace(",", "")) for h, c in zip(header, cells) if c.replace(",", "").isdigit()}
    raise AssertionError(f"{file} is not in SOURCE.md")


def test_evaluate_real_data_support_matches_source(evaluated_real):
    counts = published(evaluated_real["source"], "emerging.dev.conll")
    data = evaluated_real["json"]
    assert data["n_examples"] == counts["sentences"]
    gold_labels = {label for label in counts if label not in ("bytes", "sentences", "tokens", "entities")}
    support = {label: s["support"] for label, s in data["per_label"].items() if s["support"]}
    assert support == {label: counts[label] for label in gold_labels}
    assert sum(support.values()) == counts["entities"]
    scores = table_rows(parse_html(evaluated_real["html"]), "label")
    for label in gold_labels:
        assert scores[label][-1] == str(counts[label])


def test_every_mismatched_example_is_rendered(evaluated_real):
    """The spec: *every* mismatched example is rendered, gold above prediction (this one has
    hundreds)."""
    root = parse_html(evaluated_real["html"])
    examples = [div for div in root.find_all("div") if (div.attrs.get("id") or "").startswith("example-")]
    assert evaluated_real["json"]["n_mismatches"] > 200
    assert len(examples) == evaluated_real["json"]["n_mismatches"]


# In a real browser


def browser() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    why = "Chromium is not installed (apt-get install chromium); the HTML report's browser test needs it"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


def chromium(args: List[str], tmp_path: Path, name: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{name}"
    command = [
        browser(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}",
        # Any fetch would fail: no proxy answers, no name resolves.
        "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
        *args,
    ]
    proc = subprocess.run(command, capture_output=True, timeout=180)
    assert proc.returncode == 0, proc.stderr.decode("utf8", "replace")[-3000:]
    return proc


def png_rows(path: Path):
    """(width, height, the filtered scanlines) of a non-interlaced 8-bit PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    width, height, depth, colour_type, _, _, interlace = header
    assert depth == 8 and interlace == 0, header
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour_type]
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    assert len(raw) == stride * height
    return width, height, [raw[i * stride:(i + 1) * stride] for i in range(height)]


def test_report_in_headless_chromium(gold, evaluated, tmp_path):
    report = evaluated["path"]
    dom = chromium(["--dump-dom", report.resolve().as_uri()], tmp_path, "dom").stdout.decode("utf8")
    root = parse_html(dom)
    page = root.text()
    for label in evaluated["evaluation"].per_label:
        assert label in page
    for word in STATUS_WORDS:
        assert word in page, f"the status marker {word!r} is not on the rendered page"
    check_report_dom(root, evaluated["evaluation"], [EVAL_TEXTS[i] for i in gold["expected"]["mismatched"]])

    # A screenshot, compared with one of an empty page of the same size.
    empty = tmp_path / "empty.html"
    empty.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body></body></html>")
    shots = {}
    for name, page_path in (("report", report), ("empty", empty)):
        shot = tmp_path / f"{name}.png"
        chromium([f"--screenshot={shot}", "--window-size=1200,1600", page_path.resolve().as_uri()],
                 tmp_path, name)
        assert shot.is_file(), f"no screenshot of {name}"
        shots[name] = shot
    width, height, rows = png_rows(shots["report"])
    _, _, empty_rows = png_rows(shots["empty"])
    assert (width, height) == (1200, 1600)
    assert len(set(empty_rows)) < 5, "the empty page's screenshot should be uniform"
    assert len(set(rows)) > 100, "the report's screenshot is (nearly) blank"
    assert shots["report"].stat().st_size > 3 * shots["empty"].stat().st_size
