"""Test pipelines and data for test_loop, test_verify, test_cli, test_convert and test_debug.

Plain functions only (no fixtures): the test modules wrap them in their own fixtures. Built
pipelines are cached per process, so a session trains each base pipeline once.
"""
import contextlib
import itertools
import re
import random
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.cli.init_config import init_config
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import fix_random_seed, load_model_from_config
from thinc.api import Config

DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"
NCBI_DIR = DATA_DIR / "ncbi-disease"

# The recipe's training data, verbatim.
RECIPE_DATA = [
    ("Who is Shaka Khan?", {"entities": [(7, 17, "PERSON")]}),
    ("I like London and Berlin.", {"entities": [(7, 13, "LOC"), (18, 24, "LOC")]}),
]
RECIPE_ENTS = {
    "Who is Shaka Khan?": [("Shaka Khan", "PERSON")],
    "I like London and Berlin.": [("London", "LOC"), ("Berlin", "LOC")],
}


def ents(doc: Doc) -> List[Tuple[str, str]]:
    return [(e.text, e.label_) for e in doc.ents]


# Hand-made syntax: three sentence templates with Penn tags, heads (absolute token indices)
# and dependency labels, filled from small word lists.

_NAMES = ["Alice", "Bob", "Maria", "Peter", "Chen", "Fatima", "Olga", "Tom"]
_CITIES = ["Paris", "London", "Berlin", "Madrid", "Tokyo", "Cairo", "Lima", "Oslo"]
_NOUNS = ["cat", "dog", "man", "woman", "child", "teacher", "farmer", "doctor"]
_VERBS = ["sees", "likes", "helps", "finds", "calls", "knows"]
_ADJS = ["green", "old", "small", "red", "fresh", "cheap"]
_PLURALS = ["apples", "books", "cars", "songs", "houses", "boats"]


def _subj_verb_obj(a: str, verb: str, b: str) -> Dict[str, list]:
    # The cat sees the dog .
    return {
        "words": ["The", a, verb, "the", b, "."],
        "tags": ["DT", "NN", "VBZ", "DT", "NN", "."],
        "heads": [1, 2, 2, 4, 2, 2],
        "deps": ["det", "nsubj", "ROOT", "det", "dobj", "punct"],
    }


def _lives_in(name: str, city: str) -> Dict[str, list]:
    # Alice lives in Paris .
    return {
        "words": [name, "lives", "in", city, "."],
        "tags": ["NNP", "VBZ", "IN", "NNP", "."],
        "heads": [1, 1, 1, 2, 1],
        "deps": ["nsubj", "ROOT", "prep", "pobj", "punct"],
    }


def _likes_adj(name: str, adj: str, plural: str) -> Dict[str, list]:
    # Alice likes green apples .
    return {
        "words": [name, "likes", adj, plural, "."],
        "tags": ["NNP", "VBZ", "JJ", "NNS", "."],
        "heads": [1, 1, 3, 1, 1],
        "deps": ["nsubj", "ROOT", "amod", "dobj", "punct"],
    }


def syntax_records() -> List[Dict[str, list]]:
    """Forty-odd sentences with tags, heads and deps; the first name and city of each
    `lives in` sentence are PERSON and GPE entities (token spans in "entities")."""
    rng = random.Random(7)
    records = []
    for a, verb, b in itertools.islice(
        ((a, v, b) for a in _NOUNS for v in _VERBS for b in _NOUNS if a != b), 0, None, 23
    ):
        records.append(_subj_verb_obj(a, verb, b))
    for name, city in zip(_NAMES, _CITIES):
        record = _lives_in(name, city)
        record["entities"] = ["U-PERSON", "O", "O", "U-GPE", "O"]
        records.append(record)
    for name, city in zip(_NAMES, reversed(_CITIES)):
        record = _lives_in(name, city)
        record["entities"] = ["U-PERSON", "O", "O", "U-GPE", "O"]
        records.append(record)
    for name in _NAMES:
        record = _likes_adj(name, rng.choice(_ADJS), rng.choice(_PLURALS))
        record["entities"] = ["U-PERSON", "O", "O", "O", "O"]
        records.append(record)
    return records


def syntax_examples(nlp: Language, with_ents: bool) -> List[Example]:
    examples = []
    for record in syntax_records():
        annotations = {k: v for k, v in record.items() if k != "words"}
        if not with_ents:
            annotations.pop("entities", None)
        doc = Doc(nlp.vocab, words=record["words"])
        examples.append(Example.from_dict(doc, annotations))
    return examples


# Texts the base pipelines never saw, to compare tagger and parser output on.
HELD_TEXTS = [
    "The farmer helps the teacher.",
    "Olga lives in Cairo.",
    "Tom likes cheap boats.",
    "The doctor knows the child. Maria lives in Lima.",
    "Peter finds the old dog in Oslo.",
]

# New NER data for train(): a label the base pipelines do not know (FRUIT) next to theirs.
NEW_NER_DATA = [
    ("Alice ate a mango in Paris.", {"entities": [(0, 5, "PERSON"), (12, 17, "FRUIT"), (21, 26, "GPE")]}),
    ("Bob bought a papaya.", {"entities": [(0, 3, "PERSON"), (13, 19, "FRUIT")]}),
    ("Maria likes the kiwi.", {"entities": [(0, 5, "PERSON"), (16, 20, "FRUIT")]}),
    ("A mango is sweet.", {"entities": [(2, 7, "FRUIT")]}),
    ("Chen lives in Tokyo.", {"entities": [(0, 4, "PERSON"), (14, 19, "GPE")]}),
    ("The papaya from Lima is ripe.", {"entities": [(4, 10, "FRUIT"), (16, 20, "GPE")]}),
]


def syntax_view(nlp: Language, texts: Sequence[str] = HELD_TEXTS) -> List[List[tuple]]:
    """What the tagger and parser say about `texts`: tag, dep, head index, sentence start."""
    return [
        [(t.text, t.tag_, t.dep_, t.head.i, t.is_sent_start) for t in doc]
        for doc in nlp.pipe(texts)
    ]


def base_config(with_ner: bool) -> str:
    """The config string `spacy init config -p tok2vec,tagger,parser[,ner] -o efficiency`
    writes: tagger, parser (and ner) listen to the shared tok2vec."""
    pipeline = ["tok2vec", "tagger", "parser"] + (["ner"] if with_ner else [])
    return init_config(lang="en", pipeline=pipeline, optimize="efficiency").to_str()


def train_base(with_ner: bool, n_iter: int = 15, seed: int = 0) -> Language:
    """A tok2vec + tagger + parser (+ ner) pipeline from `base_config`, trained briefly on
    `syntax_records`."""
    fix_random_seed(seed)
    config = Config().from_str(base_config(with_ner))
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    examples = syntax_examples(nlp, with_ents=with_ner)
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    for _ in range(n_iter):
        rng.shuffle(examples)
        for start in range(0, len(examples), 8):
            nlp.update(examples[start : start + 8], sgd=optimizer, drop=0.1)
    return nlp


_CACHE: Dict[str, Any] = {}


def saved_base(with_ner: bool, tmp_path_factory) -> Path:
    """`train_base(with_ner)` saved to a fresh directory, trained once per test session."""
    key = "base-ner" if with_ner else "base"
    if key not in _CACHE:
        path = tmp_path_factory.mktemp(key) / "model"
        train_base(with_ner).to_disk(path)
        _CACHE[key] = path
    return _CACHE[key]


def recipe_trained(tmp_path_factory) -> Tuple[Language, Any, Path]:
    """The recipe: a blank "en" whose new ner is trained on RECIPE_DATA for 100 epochs with
    dropout 0.5, then saved. (nlp, TrainResult, saved path), trained once per test session;
    callers must not change the returned nlp."""
    if "recipe" not in _CACHE:
        from spacy_ner_trainer import train

        nlp = spacy.blank("en")
        result = train(nlp, RECIPE_DATA, n_iter=100, dropout=0.5, seed=0)
        path = tmp_path_factory.mktemp("recipe") / "model"
        nlp.to_disk(path)
        _CACHE["recipe"] = (nlp, result, path)
    return _CACHE["recipe"]


def ncbi_path(split: str) -> Optional[Path]:
    path = NCBI_DIR / f"{split}.tsv"
    return path if path.exists() else None


def conll_counts(path: Path, limit: int) -> Tuple[int, int, Dict[str, int]]:
    """(sentences, tokens, entities per label) of the first `limit` sentences of an IOB2
    token<TAB>tag file, counted straight from the text, without the package's reader."""
    sentences, tokens, entities = 0, 0, {}
    in_sentence = False
    with path.open(encoding="utf8") as file_:
        for line in file_:
            line = line.rstrip("\r\n")
            if not line.strip():
                if in_sentence:
                    sentences += 1
                    in_sentence = False
                    if sentences == limit:
                        break
                continue
            in_sentence = True
            tokens += 1
            tag = line.split("\t")[-1]
            if tag.startswith("B-"):
                entities[tag[2:]] = entities.get(tag[2:], 0) + 1
        else:
            sentences += int(in_sentence)
    return sentences, tokens, entities


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_cli(*args, cwd) -> Tuple[int, str, str]:
    """`python -m spacy_ner_trainer ARGS` in `cwd`, in process (typer's CliRunner):
    (exit code, stdout, stderr), colours removed. An exception other than an exit is raised.
    stderr is not a terminal here, as when the output is piped."""
    from typer.testing import CliRunner

    from spacy_ner_trainer.cli import app

    with contextlib.chdir(cwd):
        result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, ANSI.sub("", result.stdout), ANSI.sub("", result.stderr)
