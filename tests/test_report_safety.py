"""The HTML reports against hostile data: labels, texts, a data file name and a model directory
that try <script>, event handlers, javascript: URLs and </style>, </title> and attribute
breakouts. Each payload, if it ever ran or became markup, would leave a marker in the DOM
("pwned" in an attribute). Each report (train, evaluate, verify, train-curve, made through
the CLI) is opened in headless Chromium twice: as written, and as a copy without its
Content-Security-Policy, so that escaping alone is tested; the DOM Chromium ends with must
hold no marker, no event handler, no javascript: URL and no script, and show every payload
as text."""
import json
import re
from pathlib import Path
from typing import Dict, List

import pytest
from typer.testing import CliRunner

from browser import dump_dom, parse_html, squash, walk, without_csp
from spacy_ner_trainer.cli import app


def mark(n: int) -> str:
    """JavaScript that leaves marker n: a data-pwned<n> attribute on <html> (no quotes needed)."""
    return f"document.documentElement.dataset.pwned{n}=1"


# Each payload aims at one context: the body, an attribute value, <style>, <title>, a link.
PAYLOADS = {
    "script": lambda n: f"<script>{mark(n)}</script>",
    "img onerror": lambda n: f'<img src=x onerror="{mark(n)}">',
    "svg onload": lambda n: f'<svg onload="{mark(n)}">',
    "javascript: URL": lambda n: f'<a id=pwned{n} href="javascript:{mark(n)}">link</a>',
    "</style>": lambda n: f"</style><script>{mark(n)}</script>",
    "</title>": lambda n: f"</title><script>{mark(n)}</script>",
    'attribute "': lambda n: f'"><img src=x onerror="{mark(n)}">',
    "attribute '": lambda n: f"' id='pwned{n}",
}
N = iter(range(1, 1000))
LABEL_PER = "PER" + PAYLOADS["img onerror"](next(N)) + PAYLOADS['attribute "'](next(N))
LABEL_LOC = "LOC" + PAYLOADS["</style>"](next(N)) + PAYLOADS["attribute '"](next(N))
TEXT_PAYLOADS = [PAYLOADS[kind](next(N)) for kind in
                 ("script", "svg onload", "javascript: URL", "</title>", "</style>", 'attribute "', "attribute '")]
# A path: the "/" in the payload makes directories, the whole string is the path given.
DATA_PATH = "d" + PAYLOADS["svg onload"](next(N)) + "/x" + PAYLOADS["</title>"](next(N)) + ".jsonl"
MODEL_DIR = "m" + PAYLOADS["img onerror"](next(N)) + PAYLOADS["attribute '"](next(N))
PAYLOAD_STRINGS = [LABEL_PER, LABEL_LOC, *TEXT_PAYLOADS, DATA_PATH, MODEL_DIR]

_PEOPLE = [("Alice", "Paris"), ("Bob", "London"), ("Maria", "Berlin"), ("Chen", "Tokyo"),
           ("Omar", "Cairo"), ("Anna", "Rome")]


def hostile_records() -> List[dict]:
    records = []
    for person, city in _PEOPLE:
        # Every text holds every text payload, outside the entities.
        text = f"{person} visited {city} . " + " ".join(TEXT_PAYLOADS)
        c = text.index(city)
        records.append({"text": text, "spans": [{"start": 0, "end": len(person), "label": LABEL_PER},
                                                {"start": c, "end": c + len(city), "label": LABEL_LOC}]})
    return records


def invoke(*args: str, code: int = 0) -> None:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == code, result.output


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> Dict[str, Path]:
    """The four reports, written through the CLI in a folder of their own."""
    cwd = tmp_path_factory.mktemp("hostile")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        data = Path(DATA_PATH)
        data.parent.mkdir(parents=True)
        data.write_text("".join(json.dumps(r) + "\n" for r in hostile_records()), encoding="utf8")
        invoke("train", DATA_PATH, "--dev", DATA_PATH, "--output", MODEL_DIR, "--html", "train.html",
               "--n-iter", "2", "--quiet")
        model = str(Path(MODEL_DIR) / "model-last")
        invoke("evaluate", model, DATA_PATH, "--html", "evaluate.html", "--quiet")
        # Recall 1.0 is not reached after two epochs: a failed check that names the data.
        invoke("verify", model, DATA_PATH, "--min-recall", "1.0", "--html", "verify.html", "--quiet", code=1)
        invoke("train-curve", DATA_PATH, "--dev", DATA_PATH, "--n-iter", "1", "--html", "curve.html", "--quiet")
    return {name: cwd / f"{name}.html" for name in ("train", "evaluate", "verify", "curve")}


def check_dom(dom: str, *, texts: bool) -> None:
    root = parse_html(dom)
    for node in walk(root):
        for name, value in node.attrs.items():
            assert "pwned" not in name and "pwned" not in (value or ""), f"marker: <{node.tag} {name}={value!r}>"
            assert not name.startswith("on"), f"an event handler: <{node.tag} {name}={value!r}>"
            assert not re.match(r"\s*javascript:", value or "", re.I), f"a javascript: URL in <{node.tag}>"
    assert not root.find_all("script") and not root.find_all("img") and not root.find_all("a") and not root.find_all("iframe")
    (head,) = root.find_all("head")
    (title,) = head.find_all("title")
    (h1,) = root.find_all("h1")
    assert title.text() == h1.text(), "the page title is not the heading: something changed it"
    (body,) = root.find_all("body")
    shown = squash(body.text())
    assert squash(DATA_PATH) in squash(h1.text()), h1.text()
    if texts:
        for payload in (LABEL_PER, LABEL_LOC):
            assert squash(payload) in shown, f"the label {payload!r} is not shown as text"
        examples = [div for div in root.find_all("div") if div.attrs.get("class") == "entities"]
        assert examples, "no mismatched example was rendered"
        for div in examples:
            # The text, without the label tags displaCy puts in each entity box.
            text = squash(div.text(skip=lambda n: n.tag == "span"))
            for payload in TEXT_PAYLOADS:
                assert squash(payload) in text, f"the text payload {payload!r} is not shown as text"


@pytest.mark.parametrize("name", ["train", "evaluate", "verify", "curve"])
def test_hostile_data_stays_text(reports, name, tmp_path):
    page = reports[name]
    html = page.read_text(encoding="utf8")
    texts = name != "curve"  # the curve shows the data's name only
    check_dom(dump_dom(page, tmp_path / "profile"), texts=texts)
    # Escaping alone: the same page without its CSP.
    copy = tmp_path / "no-csp.html"
    copy.write_text(without_csp(html), encoding="utf8")
    check_dom(dump_dom(copy, tmp_path / "profile"), texts=texts)
    if name == "evaluate":
        assert squash(MODEL_DIR) in squash(parse_html(html).find_all("h1")[0].text())


def test_payloads_fire_when_put_raw_into_a_page(tmp_path):
    """The control: raw, in the contexts they aim at, the payloads do leave their markers (so
    their absence above means something)."""
    numbered = {kind: make(900 + i) for i, (kind, make) in enumerate(PAYLOADS.items())}
    raw = "".join(numbered.values())
    page = tmp_path / "raw.html"
    page.write_text(f"<!DOCTYPE html><html><head><title>{raw}</title><style>p {{}}{raw}</style></head>"
                    f'<body><p title="{raw}">x</p><p title=\'{raw}\'>y</p><p>{raw}</p></body></html>',
                    encoding="utf8")
    root = parse_html(dump_dom(page, tmp_path / "profile"))
    attrs = " ".join(f"{k}={v}" for node in walk(root) for k, v in node.attrs.items())
    for i, kind in enumerate(PAYLOADS):
        assert f"pwned{900 + i}" in attrs, f"the {kind} payload left no marker"
