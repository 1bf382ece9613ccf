"""The registered functions: found through spaCy's registry by entry point in a fresh
interpreter, resolved from config strings, and used by `spacy train`."""
import configparser
import importlib
import json
import subprocess
import sys
import textwrap
from importlib.metadata import distribution
from pathlib import Path

import pytest
import spacy
from spacy.util import load_config_from_str

import spacy_ner_trainer

ROOT = Path(__file__).parents[1]

# Everything the package registers: (registry, name, "module:object"). A new registered
# function gets a row here; test_every_entry_point_is_listed keeps the list honest.
REGISTERED = [
    ("readers", "spacy-ner-trainer.NerCorpus.v1", "spacy_ner_trainer.readers:ner_corpus_v1"),
    ("readers", "spacy-ner-trainer.ner_labels.v1", "spacy_ner_trainer.labels:ner_labels_v1"),
    ("readers", "spacy-ner-trainer.RehearsalCorpus.v1", "spacy_ner_trainer.rehearse:rehearsal_corpus_v1"),
    ("callbacks", "spacy-ner-trainer.verify.v1", "spacy_ner_trainer.verify:verify_callback_v1"),
    ("callbacks", "spacy-ner-trainer.follow_labels.v1", "spacy_ner_trainer.pipeline:follow_labels_v1"),
    ("batchers", "spacy-ner-trainer.shuffled_batches.v1", "spacy_ner_trainer.batching:shuffled_batches_v1"),
    ("cli", "ner-trainer", "spacy_ner_trainer.spacy_cli:ner_trainer"),
]
# catalogue's entry-point group for each of spaCy's registries is "spacy_" + the registry.
GROUP_PREFIX = "spacy_"


def run_python(code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter, where entry points are read anew. `cwd` is on its
    sys.path (as for any `python -c`): not the checkout, so that it imports the installed package."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=120, cwd=cwd,
    )


def declared_entry_points():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    declared = set()
    for group, lines in parser["options.entry_points"].items():
        for line in lines.strip().splitlines():
            name, target = (part.strip() for part in line.split("=", 1))
            declared.add((group[len(GROUP_PREFIX):], name, target))
    return declared


# One fresh interpreter, where entry points are read anew, for every check that needs one: it
# resolves a config string with the package's readers before anything imported the package,
# then loads every registered name from its entry point.
FRESH = """
import importlib
import json
import sys
import spacy
from spacy.util import load_config_from_str

config, registered = sys.argv[1], json.loads(sys.argv[2])
assert "spacy_ner_trainer" not in sys.modules  # only the entry points can load it
resolved = spacy.registry.resolve(load_config_from_str(config))
nlp = spacy.blank("en")
examples = list(resolved["corpora"]["train"](nlp))
ents = [[(e.start_char, e.end_char, e.label_) for e in eg.reference.ents] for eg in examples]
names = []
for registry, name, target in registered:
    module, attr = target.split(":")
    reg = getattr(spacy.registry, registry)
    found = reg.get_entry_point(name)
    assert found is getattr(importlib.import_module(module), attr), (name, found)
    assert reg.get(name) is found, name
    names.append(name)
print(json.dumps({"ents": ents, "labels": resolved["labels"], "resolved": names}))
"""

FRESH_CONFIG = """
[paths]
train = "{path}"

[corpora]

[corpora.train]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${{paths.train}}
label_map = {{"per": "PERSON"}}
limit = 0

[labels]
@readers = "spacy-ner-trainer.ner_labels.v1"
path = ${{paths.train}}
label_map = {{"per": "PERSON"}}
"""


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> dict:
    """FRESH's JSON output, on a two-record train.jsonl (a seed tuple and a span record)."""
    path = tmp_path_factory.mktemp("fresh") / "train.jsonl"
    path.write_text(
        '["I like London.", {"entities": [[7, 13, "GPE"]]}]\n'
        '{"text": "Ann met Bob.", "spans": [{"start": 0, "end": 3, "label": "per"}, '
        '{"start": 8, "end": 11, "label": "per"}]}\n', encoding="utf8")
    result = run_python(FRESH, FRESH_CONFIG.format(path=path), json.dumps(REGISTERED), cwd=path.parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_registered_name_resolves_in_a_fresh_interpreter(fresh):
    assert fresh["resolved"] == [name for _, name, _ in REGISTERED]


def test_config_string_resolves_corpora_and_labels_in_a_fresh_interpreter(fresh):
    assert fresh["ents"] == [[[7, 13, "GPE"]], [[0, 3, "PERSON"], [8, 11, "PERSON"]]]
    assert fresh["labels"]["1"] == {"PERSON": 2, "GPE": 1}


@pytest.mark.parametrize("registry,name,target", REGISTERED, ids=[r[1] for r in REGISTERED])
def test_registered_name_resolves_in_this_interpreter(registry, name, target):
    found = getattr(spacy.registry, registry).get(name)
    module, attr = target.split(":")
    assert found is getattr(importlib.import_module(module), attr)


def test_every_entry_point_is_listed():
    assert declared_entry_points() == set(REGISTERED)
    installed = {
        (ep.group[len(GROUP_PREFIX):], ep.name, ep.value)
        for ep in distribution("spacy-ner-trainer").entry_points
        if ep.group.startswith(GROUP_PREFIX)
    }
    # The installed metadata (pip install -e .) matches setup.cfg.
    assert installed == set(REGISTERED)


def test_package_exports():
    assert issubclass(spacy_ner_trainer.NerDataError, ValueError)
    for name in spacy_ner_trainer.__all__:
        assert hasattr(spacy_ner_trainer, name)


def test_config_with_a_missing_path_fails_when_resolved(tmp_path):
    config = load_config_from_str(f"""
    [corpora]

    [corpora.train]
    @readers = "spacy-ner-trainer.NerCorpus.v1"
    path = "{tmp_path / 'nope.jsonl'}"
    """)
    with pytest.raises(spacy_ner_trainer.NerDataError) as info:
        spacy.registry.resolve(config)
    assert "nope.jsonl" in str(info.value)


TRAIN_CONFIG = """
[paths]
train = null
dev = null

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["tok2vec", "ner"]
batch_size = 64

[components]

[components.tok2vec]
factory = "tok2vec"

[components.tok2vec.model]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 32
depth = 1
embed_size = 500
window_size = 1
maxout_pieces = 2
subword_features = true

[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
extra_state_tokens = false
hidden_width = 32
maxout_pieces = 2
use_upper = true
nO = null

[components.ner.model.tok2vec]
@architectures = "spacy.Tok2VecListener.v1"
width = ${components.tok2vec.model.width}
upstream = "*"

[corpora]

[corpora.train]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${paths.train}
limit = 200

[corpora.dev]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${paths.dev}
limit = 50

[training]
train_corpus = "corpora.train"
dev_corpus = "corpora.dev"
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
max_steps = 100
eval_frequency = 50

[initialize]

[initialize.components]

[initialize.components.ner]

[initialize.components.ner.labels]
@readers = "spacy-ner-trainer.ner_labels.v1"
path = ${paths.train}
"""


def train_from_config(tmp_path, train_path, dev_path) -> Path:
    """`spacy train` on TRAIN_CONFIG for 20 steps; the output directory."""
    from spacy.cli.train import train

    config_path = tmp_path / "config.cfg"
    config_path.write_text(TRAIN_CONFIG, encoding="utf8")
    output = tmp_path / "output"
    train(config_path, output, overrides={
        "paths.train": str(train_path),
        "paths.dev": str(dev_path),
        "training.max_steps": 20,
        "training.eval_frequency": 10,
    })
    return output


def assert_trained(output: Path, labels) -> None:
    for model in ("model-best", "model-last"):
        assert (output / model / "meta.json").is_file()
        nlp = spacy.load(output / model)
        assert nlp.pipe_names == ["tok2vec", "ner"]
        assert set(nlp.get_pipe("ner").labels) == set(labels)
        doc = nlp("Empire State Building is in New York, said Ann Lee.")
        assert all(ent.label_ in labels for ent in doc.ents)


def test_config_trains_a_small_model(corpus_path, tmp_path):
    output = train_from_config(
        tmp_path,
        corpus_path("wnut17/wnut17train.conll"),
        corpus_path("wnut17/emerging.dev.conll"),
    )
    assert_trained(output, {"corporation", "creative-work", "group", "location", "person", "product"})


def test_config_trains_a_small_model_from_jsonl(write_jsonl, tmp_path):
    # Runs without the real corpora: seed tuples and Prodigy-style span records mixed.
    records = [
        ["Who is Shaka Khan?", {"entities": [[7, 17, "PERSON"]]}],
        ["I like London and Berlin.", {"entities": [[7, 13, "LOC"], [18, 24, "LOC"]]}],
        {"text": "Ann Lee moved to Paris.", "spans": [{"start": 0, "end": 7, "label": "PERSON"},
                                                     {"start": 17, "end": 22, "label": "LOC"}]},
        {"text": "Nothing to see here.", "spans": []},
    ] * 10
    train_path = write_jsonl("train.jsonl", records)
    dev_path = write_jsonl("dev.jsonl", records[:4])
    output = train_from_config(tmp_path, train_path, dev_path)
    assert_trained(output, {"PERSON", "LOC"})
