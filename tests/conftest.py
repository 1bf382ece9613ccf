"""Shared fixtures: the real corpora (with their published counts), a blank English pipeline,
file writers and a reader for the warning summaries the readers log."""
import json
import logging
from pathlib import Path
from typing import Dict, List, NamedTuple

import pytest

# spaCy and the package are imported in the fixtures that use them: pytest-xdist's controller
# loads this file too, and importing spaCy (with torch) there delays the workers' start by
# seconds for nothing.

# The real corpora live next to the repository, never inside it: <repo>/../shared/data.
DATA_DIR = Path(__file__).parents[1].parent / "shared" / "data"
LOGGER_NAME = "spacy.ner_trainer"


class Published(NamedTuple):
    """The counts a corpus folder's SOURCE.md publishes for one file."""

    file: str  # relative to DATA_DIR
    sentences: int
    tokens: int
    entities: Dict[str, int]


# Copied from the "Files" table of each SOURCE.md: these are the expected values, not
# something the tests compute.
PUBLISHED: List[Published] = [
    Published("wnut17/wnut17train.conll", 3394, 62730, {
        "corporation": 221, "creative-work": 140, "group": 264,
        "location": 548, "person": 660, "product": 142}),
    Published("wnut17/emerging.dev.conll", 1009, 15733, {
        "corporation": 34, "creative-work": 105, "group": 39,
        "location": 74, "person": 470, "product": 114}),
    Published("wnut17/emerging.test.annotated", 1287, 23394, {
        "corporation": 66, "creative-work": 142, "group": 165,
        "location": 150, "person": 429, "product": 127}),
    Published("ncbi-disease/train.tsv", 5424, 135701, {"Disease": 5134}),
    Published("ncbi-disease/devel.tsv", 923, 23969, {"Disease": 787}),
    Published("ncbi-disease/test.tsv", 940, 24497, {"Disease": 960}),
    Published("bc5cdr/train.tsv", 4560, 118170, {"Chemical": 5203, "Disease": 4182}),
    Published("bc5cdr/devel.tsv", 4581, 117453, {"Chemical": 5347, "Disease": 4246}),
    Published("bc5cdr/test.tsv", 4797, 124750, {"Chemical": 5385, "Disease": 4424}),
]
# Published entity totals, as a check on the per-label numbers above.
PUBLISHED_TOTALS = {
    "wnut17/wnut17train.conll": 1975, "wnut17/emerging.dev.conll": 836,
    "wnut17/emerging.test.annotated": 1079, "ncbi-disease/train.tsv": 5134,
    "ncbi-disease/devel.tsv": 787, "ncbi-disease/test.tsv": 960, "bc5cdr/train.tsv": 9385,
    "bc5cdr/devel.tsv": 9593, "bc5cdr/test.tsv": 9809,
}


def pytest_generate_tests(metafunc):
    """A test that takes `published` runs once for each of the nine real files."""
    if "published" in metafunc.fixturenames:
        metafunc.parametrize("published", PUBLISHED, ids=[p.file for p in PUBLISHED])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"the real corpora are not available: no folder {DATA_DIR}")
    return DATA_DIR


@pytest.fixture(scope="session")
def corpus_path(data_dir):
    """corpus_path("wnut17/emerging.dev.conll") -> the file, or a skip if it is missing."""

    def _corpus_path(relative: str) -> Path:
        path = data_dir / relative
        if not path.is_file():
            pytest.skip(f"the real corpus file {path} is not available")
        return path

    return _corpus_path


@pytest.fixture
def nlp():
    """A fresh blank "en", for a test that may change it (add a pipe, initialize)."""
    import spacy

    return spacy.blank("en")


@pytest.fixture(scope="session")
def reader_nlp():
    """One blank "en" per process, for reading only: building one takes about 0.1 s (the
    tokenizer's exceptions), and reading adds nothing to it but strings and lexemes. Tests
    that change the pipeline take `nlp` instead."""
    import spacy

    return spacy.blank("en")


@pytest.fixture
def write(tmp_path):
    """write("name.conll", text_or_bytes) -> the path of the new file under tmp_path."""

    def _write(name: str, content) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf8")
        return path

    return _write


@pytest.fixture
def write_jsonl(write):
    """write_jsonl("name.jsonl", [record, ...]) -> the path; one JSON record a line."""

    def _write_jsonl(name: str, records) -> Path:
        return write(name, "".join(json.dumps(r) + "\n" for r in records))

    return _write_jsonl


@pytest.fixture
def read(reader_nlp):
    """read(path, **reader_args) -> the list of Examples NerCorpus.v1 gives for a blank "en"."""
    from spacy_ner_trainer import NerCorpus

    def _read(path, **kwargs):
        return list(NerCorpus(path, **kwargs)(reader_nlp))

    return _read


@pytest.fixture
def summaries(caplog):
    """summaries() -> the warnings logged through the `spacy.ner_trainer` logger so far."""
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)

    def _summaries() -> List[str]:
        return [
            r.getMessage() for r in caplog.records
            if r.name == LOGGER_NAME and r.levelno == logging.WARNING
        ]

    return _summaries
