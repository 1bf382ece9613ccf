"""The HTML reports of `evaluate`, `verify`, `train` and `train-curve` (`--html`), and
`evaluate`'s scores and confusion summary: checked in the file itself and in headless Chromium
with networking off. (Hostile data: test_report_safety.py.)

A tiny model is trained once (train_pipeline, as `train` runs it); the gold set it is evaluated
on is made in the test from the model's own predictions, with one label changed (wrong label),
one prediction left out of the gold (spurious) and one gold entity the model does not predict
(missed), so that the expected counts are known by construction."""
import json
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional

import pytest
import spacy
from spacy.training import Example
from typer.testing import CliRunner

from browser import Node, chromium, dump_dom, parse_html, png_rows, squash, walk, without_csp
from spacy_ner_trainer import NerCorpus
from spacy_ner_trainer.cli import app
from spacy_ner_trainer.evaluate import Evaluation, evaluate
from spacy_ner_trainer.report import CSP, render_curve, render_evaluation, render_training
from spacy_ner_trainer.semeval import semeval_rows
from spacy_ner_trainer.verify import verify
from spacy_ner_trainer.workflow import MODEL_BEST, train_pipeline

ANSI = re.compile(r"\x1b\[[0-9;]*m")
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
N_EPOCHS = 12
STATUS_WORDS = ("missed", "spurious", "wrong label")

_NAMES = ["Alice", "Bob", "Maria", "Peter", "Chen", "Olga", "Fatima", "Tom", "Anna", "Omar"]
_CITIES = ["Paris", "London", "Berlin", "Madrid", "Tokyo", "Cairo", "Lima", "Oslo", "Rome", "Delhi"]
_FRAMES = ["{p} lives in {c}.", "{p} moved to {c}.", "{p} visited {c} last year.", "{p} works in {c}."]


def run_cli(*args, cwd: Path):
    """The CLI in this process, in `cwd`: (exit code, output), colours removed."""
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, ANSI.sub("", result.output)


def person_city(frame: str, person: str, city: str) -> dict:
    text = frame.format(p=person, c=city)
    p, c = text.index(person), text.index(city)
    return {"text": text, "spans": [{"start": p, "end": p + len(person), "label": "PERSON"},
                                    {"start": c, "end": c + len(city), "label": "GPE"}]}


def write_jsonl(path: Path, records: List[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    return path


def table_rows(root: Node, first_header: str) -> Dict[str, List[str]]:
    """The first table under `root` whose first header cell is `first_header`: first cell ->
    the row's cells."""
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


def table_list(root: Node, first_header: str) -> List[List[str]]:
    """Every row of that table, in order, and the class of the row as the last item."""
    for table in root.find_all("table"):
        headers = [th.text().strip() for th in table.find_all("th")]
        if headers and headers[0] == first_header:
            return [[td.text().strip() for td in tr.find_all("td")] + [tr.attrs.get("class") or ""]
                    for tr in table.find_all("tr") if tr.find_all("td")]
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
    for node in walk(parse_html(text)):
        for name, value in node.attrs.items():
            if name in ("src", "href", "xlink:href", "srcset", "data", "poster", "action") and value:
                if re.match(r"\s*(https?:)?//", value):
                    refs.append(f"{node.tag} {name}={value}")
    refs += re.findall(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)", text)
    refs += re.findall(r"@import[^;]*", text)
    return refs


# The model and the evaluation data


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """train_pipeline(train.jsonl, dev_data=dev.jsonl, n_iter=12, output=out): what `train` runs
    (at dropout 0.3, which leaves a few training examples mismatched for the pages to show)."""
    cwd = tmp_path_factory.mktemp("report")
    train = [person_city(_FRAMES[i % 3], p, c) for i, (p, c) in enumerate(zip(_NAMES[:8], _CITIES[:8]))]
    train += [person_city(_FRAMES[3], p, c) for p, c in zip(_NAMES[:4], reversed(_CITIES[:8]))]
    dev = [person_city(_FRAMES[i % 4], p, c) for i, (p, c) in enumerate(zip(_NAMES[8:], _CITIES[8:]))]
    write_jsonl(cwd / "train.jsonl", train)
    write_jsonl(cwd / "dev.jsonl", dev)
    run = train_pipeline(NerCorpus(cwd / "train.jsonl"), dev_data=NerCorpus(cwd / "dev.jsonl"), output=cwd / "out",
                         n_iter=N_EPOCHS, patience=0, seed=0, dropout=0.3)
    return {"cwd": cwd, "model": run.saved[MODEL_BEST], "run": run}


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
    """`evaluate MODEL gold.jsonl --json ev.json --html ev.html`, once."""
    code, out = run_cli("evaluate", trained["model"], "gold.jsonl", "--json", "ev.json", "--html", "ev.html",
                        cwd=trained["cwd"])
    assert code == 0, out
    html = (trained["cwd"] / "ev.html").read_text(encoding="utf8")
    data = json.loads((trained["cwd"] / "ev.json").read_text(encoding="utf8"))
    return {"out": out, "html": html, "json": data, "path": trained["cwd"] / "ev.html",
            "evaluation": evaluate(gold["nlp"], gold["examples"])}


@pytest.fixture(scope="module")
def verified(trained, gold):
    """`verify MODEL gold.jsonl --min-recall 1.0 --html verify.html`: recall 1.0 cannot be
    reached (gold entities are missed by construction), so verification fails, and the report
    that says why is still written."""
    code, out = run_cli("verify", trained["model"], "gold.jsonl", "--min-recall", "1.0", "--html", "verify.html",
                        cwd=trained["cwd"])
    assert code == 1, out
    report = verify(gold["nlp"], gold["examples"], min_recall=1.0, round_trip=False, data_name="gold.jsonl")
    return {"out": out, "html": (trained["cwd"] / "verify.html").read_text(encoding="utf8"), "report": report}


@pytest.fixture(scope="module")
def training_page(trained):
    """The training report of the run, as `train --html` writes it."""
    run = trained["run"]
    title = f"Training report: blank en on {trained['cwd'] / 'train.jsonl'}"
    return render_training(title=title, epochs=run.result.epochs, best_epoch=run.result.best_epoch,
                           train_evaluation=run.train_report.evaluation, dev_evaluation=run.dev_report.evaluation,
                           retention=run.train_report.retention, failures=run.failures)


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


# The HTML pages


def check_tables(root: Node, evaluation: Evaluation) -> None:
    """The per-label table, the SemEval counts and the confusion summary under `root`."""
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
    semeval = getattr(evaluation, "semeval", None)
    if semeval:
        shown = table_list(root, "scheme")
        assert [row[:-1] for row in shown] == [[str(c) for c in row] for row in semeval_rows(semeval)]
        assert [row[0] for row in shown] == ["strict", "exact", "partial", "type"]


def example_divs(root: Node, prefix: str = "") -> List[Node]:
    return [div for div in root.find_all("div") if re.fullmatch(rf"{prefix}example-\d+", div.attrs.get("id") or "")]


def check_examples(root: Node, evaluation: Evaluation, prefix: str = "",
                   expected_texts: Optional[List[str]] = None) -> Dict[str, set]:
    """Every mismatched example, gold above prediction, each entity marked with its status:
    the colours each status was shown in."""
    examples = example_divs(root, prefix)
    assert len(examples) == len(evaluation.mismatches)
    if expected_texts is not None:
        assert [m["text"] for m in evaluation.mismatches] == expected_texts
    colours: Dict[str, set] = {}
    for i, (div, mismatch) in enumerate(zip(examples, evaluation.mismatches), 1):
        text = mismatch["text"]
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
    return colours


def check_report_dom(root: Node, evaluation: Evaluation, expected_texts: List[str]) -> None:
    """The tables on top, then every mismatched example; each kind of error has its own colour."""
    order = [(n.tag, n.attrs.get("id") or "") for n in walk(root)]
    tables = [i for i, (tag, _) in enumerate(order) if tag == "table"]
    first_example = next((i for i, (_, id_) in enumerate(order) if id_.startswith("example-")), len(order))
    assert len(tables) >= 2 and max(tables[:2]) < first_example, "the tables are not on top"
    check_tables(root, evaluation)
    colours = check_examples(root, evaluation, "", expected_texts)
    # Missed, spurious and wrongly-labelled entities are marked differently from each other
    # and from the correct ones.
    for status in ("missed", "spurious", "wrong_label"):
        assert len(colours.get(status, ())) == 1, (status, colours)
    distinct = [next(iter(colours[s])) for s in ("missed", "spurious", "wrong_label")]
    correct = colours.get("found", set()) | colours.get("correct", set())
    assert len(set(distinct)) == 3 and not set(distinct) & correct, colours


def test_evaluate_html_file(gold, evaluated):
    root = parse_html(evaluated["html"])
    check_report_dom(root, evaluated["evaluation"], [EVAL_TEXTS[i] for i in gold["expected"]["mismatched"]])
    assert not root.find_all("svg") and not root.find_all("ul", **{"class": "failures"})


def test_pages_are_self_contained_and_allow_no_script(evaluated, verified, training_page):
    curve = render_curve(title="curve", rows=[{"fraction": 1.0, "n_examples": 4, "f": 0.5, "delta": None}],
                         verdict="v")
    for text in (evaluated["html"], verified["html"], training_page, curve):
        assert external_references(text) == []
        root = parse_html(text)
        assert not root.find_all("script") and not root.find_all("link") and not root.find_all("img")
        assert root.find_all("style"), "the CSS is inline"
        (head,) = root.find_all("head")
        metas = [m for m in head.find_all("meta") if (m.attrs.get("http-equiv") or "").lower()
                 == "content-security-policy"]
        assert [m.attrs["content"] for m in metas] == [CSP]
        # Before anything it governs: only the charset comes first.
        assert [n.tag for n in head.elements()][:2] == ["meta", "meta"]
    policy = {d.split()[0]: d.split()[1:] for d in CSP.split(";") if d.strip()}
    assert policy["default-src"] == ["'none'"]  # no script, nothing fetched
    assert policy["style-src"] == ["'unsafe-inline'"]
    assert not any(key.startswith("script") for key in policy)


def test_verify_html(gold, verified):
    root = parse_html(verified["html"])
    check_report_dom(root, verified["report"].evaluation, [EVAL_TEXTS[i] for i in gold["expected"]["mismatched"]])
    assert not root.find_all("svg"), "verify has no training curves"


def check_failures(root: Node, expected: List[str]) -> None:
    """Each failed check on a line of its own."""
    (failures,) = root.find_all("ul", **{"class": "failures"})
    assert [li.text() for li in failures.find_all("li")] == expected != []


def test_evaluation_page_lists_failed_checks(verified):
    report = verified["report"]
    check_failures(parse_html(render_evaluation(report.evaluation, title="t", failures=report.failures())),
                   report.failures())
    assert "recall" in report.failures()[0] and report.failures()[0] in verified["out"]


def test_verify_cli_page_lists_failed_checks(verified):
    check_failures(parse_html(verified["html"]), verified["report"].failures())


def test_train_cli_page(trained):
    """`train --html`: the epochs as metrics.jsonl has them, the dev data before the training sample."""
    cwd = trained["cwd"]
    code, out = run_cli("train", "train.jsonl", "--dev", "dev.jsonl", "-n", 2, "--output", "cli-out", "--html",
                        "train.html", "-q", cwd=cwd)
    assert code == 0, out
    root = parse_html((cwd / "train.html").read_text(encoding="utf8"))
    metrics = [json.loads(line) for line in (cwd / "cli-out" / "metrics.jsonl").read_text().splitlines()]
    assert [row[:2] for row in table_list(root, "epoch")] == [[str(m["epoch"]), f"{m['loss']:.2f}"] for m in metrics]
    assert [n.attrs.get("id") for n in walk(root) if n.tag == "section"] == ["dev", "train"]
    assert "train.jsonl" in root.find_all("h1")[0].text() and "dev.jsonl" in root.find_all("h1")[0].text()


def test_evaluation_page_shows_unscored_predictions_on_a_line_of_their_own(gold):
    """A gold set without GPE: the model's GPE predictions are not scored, and are counted."""
    evaluation = evaluate(gold["nlp"], gold["examples"], labels=["PERSON"])
    assert evaluation.unscored, "the model predicts GPE entities"
    root = parse_html(render_evaluation(evaluation, title="t"))
    (line,) = root.find_all("p", **{"class": "unscored"})
    assert line.text() == evaluation.unscored_line() and "GPE" in line.text()


def polylines(root: Node) -> List[List[tuple]]:
    svgs = root.find_all("svg")
    assert len(svgs) == 1, f"{len(svgs)} <svg> elements"
    return [[tuple(float(v) for v in point.split(",")) for point in line.attrs["points"].split()]
            for line in svgs[0].find_all("polyline")]


def check_plotted(values: List[float], ys: List[float]) -> None:
    """The y coordinates are the values on an axis pointing up: y = a - b * value, b > 0."""
    lo, hi = values.index(min(values)), values.index(max(values))
    assert values[hi] > values[lo], "nothing to compare: every value is the same"
    slope = (ys[hi] - ys[lo]) / (values[hi] - values[lo])
    assert slope < 0, (values, ys)
    for value, y in zip(values, ys):
        assert y == pytest.approx(ys[lo] + slope * (value - values[lo]), abs=1.0), (values, ys)


def svg_texts(root: Node) -> List[str]:
    return [t.text().strip() for t in root.find_all("svg")[0].find_all("text")]


def test_training_page_chart(trained, training_page):
    """Loss and dev F per epoch on their own axes, with ticks and values; the best epoch marked."""
    result, root = trained["run"].result, parse_html(training_page)
    epochs = result.epochs
    assert len(epochs) == N_EPOCHS and result.best_epoch is not None
    loss, dev_f = polylines(root)  # loss first, then dev F
    for points in (loss, dev_f):
        xs = [x for x, _ in points]
        assert len(points) == N_EPOCHS and xs == sorted(xs) and len(set(xs)) == N_EPOCHS
    check_plotted([row["loss"] for row in epochs], [y for _, y in loss])
    check_plotted([row["dev"]["f"] for row in epochs], [y for _, y in dev_f])
    texts = svg_texts(root)
    assert {"loss", "dev F", "epoch"} <= set(texts)
    assert {str(i) for i in range(1, N_EPOCHS + 1)} <= set(texts), "an epoch tick is missing"
    assert {"0", "0.2", "0.4", "0.6", "0.8", "1"} <= set(texts), "a dev F tick is missing"
    # The values: each point is labelled, in its line's colour.
    svg = root.find_all("svg")[0]
    for name, line, values in (("loss", 0, [f"{row['loss']:.3g}" for row in epochs]),
                               ("dev F", 1, [f"{row['dev']['f']:.3f}" for row in epochs])):
        colour = svg.find_all("polyline")[line].attrs["stroke"]
        assert [t.attrs["fill"] for t in svg.find_all("text") if t.text() == name] == [colour]
        labelled = [t.text() for t in svg.find_all("text") if t.attrs.get("fill") == colour]
        assert labelled[-N_EPOCHS:] == values, name
    # The best epoch: a dashed line through its points, and a caption that names it.
    best_x = dev_f[result.best_epoch - 1][0]
    dashed = [line for line in root.find_all("line") if line.attrs.get("stroke-dasharray")]
    assert [float(line.attrs["x1"]) for line in dashed] == [best_x]
    assert f"best: epoch {result.best_epoch}, dev F {result.best_score:.3f}" in texts


def test_training_page_tables_and_examples(trained, training_page):
    run, root = trained["run"], parse_html(training_page)
    assert root.find_all("h1")[0].text().endswith("train.jsonl")
    rows = table_list(root, "epoch")
    labels = sorted({label for row in run.result.epochs for label in row["dev"]["per_label"]})
    assert labels == ["GPE", "PERSON"]
    for row, epoch in zip(rows, run.result.epochs, strict=True):
        dev = epoch["dev"]
        assert row[:5] == [str(epoch["epoch"]), f"{epoch['loss']:.2f}", *(f"{dev[k]:.3f}" for k in "prf")]
        assert row[5:5 + len(labels)] == [f"{dev['per_label'][label]['f']:.3f}" for label in labels]
        assert (row[-1] == "best") == (epoch["epoch"] == run.result.best_epoch), row
    # The dev data (model-best), then the training sample, each with its tables.
    sections = {s.attrs["id"]: s for s in root.find_all("section")}
    order = [n.attrs.get("id") for n in walk(root) if n.tag == "section"]
    assert order == ["dev", "train"]
    check_tables(sections["dev"], run.dev_report.evaluation)
    check_tables(sections["train"], run.train_report.evaluation)
    # Mismatched examples: the dev ones first.
    ids = [n.attrs["id"] for n in walk(root) if re.fullmatch(r"(dev|train)-example-\d+", n.attrs.get("id") or "")]
    n_dev, n_train = len(run.dev_report.mismatches), len(run.train_report.mismatches)
    assert n_dev + n_train > 0
    assert ids == [f"dev-example-{i}" for i in range(1, n_dev + 1)] + [f"train-example-{i}" for i in range(1, n_train + 1)]
    check_examples(root, run.dev_report.evaluation, "dev-")
    check_examples(root, run.train_report.evaluation, "train-")
    assert not root.find_all("ul", **{"class": "failures"}) and not run.failures


def test_training_page_retention_and_failures(trained, gold):
    """Retention per old label: here the model against its own earlier predictions, so all agree."""
    run, nlp = trained["run"], gold["nlp"]
    old = [Example(nlp.make_doc(text), nlp(text)) for text in EVAL_TEXTS]
    support = Counter(e.label_ for eg in old for e in eg.reference.ents)
    report = verify(nlp, gold["examples"], round_trip=False, min_recall=1.0, data_name="gold.jsonl", retention=old)
    page = render_training(title="t", epochs=run.result.epochs, best_epoch=run.result.best_epoch,
                           train_evaluation=report.evaluation, retention=report.retention,
                           failures=report.failures())
    root = parse_html(page)
    assert table_rows(root, "old label") == {label: [label, "1.000", "1.000", "1.000", str(n)]
                                             for label, n in support.items()}
    (failures,) = root.find_all("ul", **{"class": "failures"})
    assert [li.text() for li in failures.find_all("li")] == report.failures() != []
    assert not root.find_all("section", id="dev")


def test_training_page_without_dev_has_only_the_loss_curve(trained):
    run = train_pipeline(NerCorpus(trained["cwd"] / "train.jsonl"), n_iter=3, seed=0)
    assert run.result.best_epoch is None
    root = parse_html(render_training(title="t", epochs=run.result.epochs, best_epoch=None,
                                      train_evaluation=run.train_report.evaluation))
    (loss,) = polylines(root)
    assert len(loss) == 3
    check_plotted(run.result.losses, [y for _, y in loss])
    assert "dev F" not in svg_texts(root) and not [n for n in root.find_all("line") if n.attrs.get("stroke-dasharray")]
    assert [row[2:5] for row in table_list(root, "epoch")] == [["", "", ""]] * 3  # no dev P/R/F
    assert not root.find_all("section", id="dev")


def test_curve_page():
    rows = [{"fraction": 0.25, "n_examples": 10, "f": 0.41, "delta": None},
            {"fraction": 0.5, "n_examples": 20, "f": 0.52, "delta": 0.11},
            {"fraction": 1.0, "n_examples": 40, "f": 0.5, "delta": -0.02}]
    root = parse_html(render_curve(title="Learning curve: m on <d>", rows=rows, verdict="flat"))
    assert root.find_all("h1")[0].text() == "Learning curve: m on <d>"
    assert "flat" in root.find_all("p", **{"class": "verdict"})[0].text()
    assert table_list(root, "share of training data") == [
        ["25%", "10", "0.410", "", ""], ["50%", "20", "0.520", "+0.110", ""], ["100%", "40", "0.500", "-0.020", ""]]
    (line,) = polylines(root)
    check_plotted([r["f"] for r in rows], [y for _, y in line])
    xs = [x for x, _ in line]  # the x axis is the share of the data
    assert (xs[1] - xs[0]) * 2 == pytest.approx(xs[2] - xs[1], abs=0.2)
    assert {"25% (10)", "50% (20)", "100% (40)", "0.410", "0.520", "0.500"} <= set(svg_texts(root))


# Real data


@pytest.fixture(scope="module")
def evaluated_real(trained):
    dev = DATA_DIR / "wnut17" / "emerging.dev.conll"
    if not dev.is_file():
        pytest.skip(f"the real corpus file {dev} is not available")
    code, out = run_cli("evaluate", trained["model"], dev, "--json", "wnut.json", "--html", "wnut.html", "-q",
                        cwd=trained["cwd"])
    assert code == 0, out
    assert "\r" not in out and "examples/s" not in out  # quiet: no progress bar
    return {
        "json": json.loads((trained["cwd"] / "wnut.json").read_text(encoding="utf8")),
        "html": (trained["cwd"] / "wnut.html").read_text(encoding="utf8"),
        "path": trained["cwd"] / "wnut.html",
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
    assert evaluated_real["json"]["n_mismatches"] > 200
    assert len(example_divs(root)) == evaluated_real["json"]["n_mismatches"]


# In a real browser


def test_report_in_headless_chromium(gold, evaluated, tmp_path):
    report = evaluated["path"]
    root = parse_html(dump_dom(report, tmp_path / "profile-dom"))
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
                 tmp_path / f"profile-{name}")
        assert shot.is_file(), f"no screenshot of {name}"
        shots[name] = shot
    width, height, rows = png_rows(shots["report"])
    _, _, empty_rows = png_rows(shots["empty"])
    assert (width, height) == (1200, 1600)
    assert len(set(empty_rows)) < 5, "the empty page's screenshot should be uniform"
    assert len(set(rows)) > 100, "the report's screenshot is (nearly) blank"
    assert shots["report"].stat().st_size > 3 * shots["empty"].stat().st_size


# Counts the client rects of every entity box once the page is laid out, into <pre id=rects>.
RECTS = """
const marks = [...document.querySelectorAll('mark.entity')];
const pre = document.createElement('pre');
pre.id = 'rects';
pre.textContent = JSON.stringify({width: window.innerWidth, counts: marks.map(m => m.getClientRects().length)});
document.body.appendChild(pre);
"""


def rect_counts(html: str, tmp_path: Path, name: str, css: str = "") -> dict:
    page = tmp_path / f"{name}.html"
    copy = without_csp(html, RECTS)
    page.write_text(copy.replace("</head>", f"<style>{css}</style></head>") if css else copy, encoding="utf8")
    root = parse_html(dump_dom(page, tmp_path / f"profile-{name}", width=1280))
    (pre,) = [n for n in walk(root) if n.attrs.get("id") == "rects"]
    return json.loads(pre.text())


def test_entity_boxes_never_break_at_line_ends(trained, tmp_path):
    """Long texts full of entities, at 1280 px: every entity box is one rectangle. The control
    (the page with entity boxes back to plain inline elements) shows boxes that do break."""
    nlp = spacy.load(trained["model"])
    texts = [" ".join(_FRAMES[(i + j) % 4].format(p=_NAMES[(i + j) % 10], c=_CITIES[(i * j) % 10])
                      for j in range(25)) for i in range(4)]
    records = [{"text": t, "spans": [{"start": e.start_char, "end": e.end_char, "label": "LONG_LABEL_" + e.label_}
                                     for e in nlp(t).ents]} for t in texts]
    examples = list(NerCorpus(write_jsonl(tmp_path / "long.jsonl", records))(nlp))
    evaluation = evaluate(nlp, examples, labels="all")
    n_marks = sum(len(m["gold"]) + len(m["predicted"]) for m in evaluation.mismatches)
    assert n_marks > 100
    html = render_evaluation(evaluation, title="boxes")
    got = rect_counts(html, tmp_path, "boxes")
    assert got["width"] == 1280 and len(got["counts"]) == n_marks
    assert set(got["counts"]) == {1}, Counter(got["counts"])
    control = rect_counts(html, tmp_path, "control", css=".entities mark.entity { display: inline !important }")
    assert max(control["counts"]) > 1, "no box reached a line end: the test shows nothing"
