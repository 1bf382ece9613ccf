"""`init-config` (the CLI, in process): the config it writes uses this package's reader,
labels reader, batcher and verify callback, and spaCy trains it unchanged, through
`spacy.cli.train.train` and `python -m spacy train`; with `--model`, every component is
sourced, all but `ner` frozen, ner fine-tunes at 3e-4, only ner's scores count, and training
leaves the others' output as it was; paths must exist; without --dev a note says the dev set is
the training data; --gpu writes a curated-transformer config that spaCy trains, or refuses
without the [transformers] extra."""
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.cli.train import train as spacy_train
from thinc.api import Config

from spacy_ner_trainer.errors import UsageError
from spacy_ner_trainer.init_config import make_config
from spacy_ner_trainer.pipeline import numpy_breaks_transformer_training
from pipelines import NEW_NER_DATA, run_cli, saved_base, syntax_view

ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEPS = {"training.max_steps": 20, "training.eval_frequency": 10}
DEV_DATA = [
    ("Olga bought a mango in Oslo.", {"entities": [(0, 4, "PERSON"), (14, 19, "FRUIT"), (23, 27, "GPE")]}),
    ("Tom likes the papaya.", {"entities": [(0, 3, "PERSON"), (14, 20, "FRUIT")]}),
]
DATA_LABELS = {label for _, ann in NEW_NER_DATA for *_, label in ann["entities"]}


def run_spacy(*args, cwd):
    """A fresh `python -m spacy ARGS` in `cwd`: (returncode, stdout, stderr), colours removed."""
    proc = subprocess.run(
        [sys.executable, "-m", "spacy", *map(str, args)],
        cwd=cwd, capture_output=True, text=True, encoding="utf8", timeout=600,
    )
    return proc.returncode, ANSI.sub("", proc.stdout), ANSI.sub("", proc.stderr)


def said(text: str) -> str:
    """CLI output with wasabi's line wrapping undone."""
    return " ".join(text.split())


def write_tuples(path: Path, data) -> Path:
    path.write_text("".join(json.dumps([text, ann]) + "\n" for text, ann in data), encoding="utf8")
    return path


def readers_in(node) -> list:
    """Every @readers name in a (nested) config section."""
    if not isinstance(node, dict):
        return []
    found = [node["@readers"]] if "@readers" in node else []
    for value in node.values():
        found += readers_in(value)
    return found


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """train.jsonl and dev.jsonl in tmp_path, which is also the working directory (as for a
    user who runs init-config and then spacy train in one folder)."""
    write_tuples(tmp_path / "train.jsonl", NEW_NER_DATA)
    write_tuples(tmp_path / "dev.jsonl", DEV_DATA)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load_config(path: Path) -> Config:
    return Config().from_disk(path, interpolate=False)


def check_package_pieces(config: Config, train: str, dev: str) -> None:
    assert config["paths"]["train"] == train and config["paths"]["dev"] == dev
    for name, path_var in (("train", "${paths.train}"), ("dev", "${paths.dev}")):
        corpus = config["corpora"][name]
        assert "spacy-ner-trainer.NerCorpus.v1" in readers_in(corpus), corpus
        assert path_var in json.dumps(corpus), corpus
    assert config["training"]["batcher"]["@batchers"] == "spacy-ner-trainer.shuffled_batches.v1"
    assert config["training"]["before_to_disk"]["@callbacks"] == "spacy-ner-trainer.verify.v1"
    assert "ner" in config["nlp"]["pipeline"]


def trained_meta(output: Path) -> dict:
    meta = json.loads((output / "model-last" / "meta.json").read_text(encoding="utf8"))
    assert "spacy_ner_trainer" in meta, "the verify callback did not run before saving"
    return meta


# Without --model


def test_blank_config_trains_with_spacy_cli_train(workdir):
    code, out, err = run_cli("init-config", "ner.cfg", "--train", "train.jsonl", "--dev", "dev.jsonl", cwd=workdir)
    assert code == 0, out + err
    config = load_config(workdir / "ner.cfg")
    check_package_pieces(config, "train.jsonl", "dev.jsonl")
    labels = config["initialize"]["components"]["ner"]["labels"]
    assert labels["@readers"] == "spacy-ner-trainer.ner_labels.v1" and labels["path"] == "${paths.train}"
    assert config["nlp"]["lang"] == "en"
    assert config["training"]["optimizer"]["use_averages"] is True  # train()'s default for a new ner
    # train()'s batches and dropout for a new ner on a corpus: 100 -> 1,000 words, 0.1.
    batcher = config["training"]["batcher"]
    assert (batcher["unit"], batcher["size"]["start"], batcher["size"]["stop"]) == ("words", 100, 1000)
    assert config["training"]["dropout"] == 0.1
    # The config is complete: spaCy fills and validates it without changes.
    spacy.util.load_model_from_config(config, auto_fill=False, validate=True)

    spacy_train(workdir / "ner.cfg", workdir / "out", overrides=STEPS)
    nlp = spacy.load(workdir / "out" / "model-last")
    assert set(nlp.get_pipe("ner").labels) == DATA_LABELS
    meta = trained_meta(workdir / "out")
    assert set(meta["spacy_ner_trainer"]["verify"]) == {"train", "dev"}
    assert meta["spacy_ner_trainer"]["verify"]["dev"]["n_examples"] == len(DEV_DATA)


def test_python_m_spacy_train_runs_the_config(workdir):
    """A fresh `python -m spacy train`, no --code: the registered names resolve by entry point."""
    code, out, err = run_cli("init-config", "ner.cfg", "--train", "train.jsonl", cwd=workdir)
    assert code == 0, out + err
    before = (workdir / "ner.cfg").read_text(encoding="utf8")
    code, out, err = run_spacy("train", "ner.cfg", "--output", "out", "--training.max_steps", "10",
                               "--training.eval_frequency", "5", cwd=workdir)
    assert code == 0, out + err
    assert (workdir / "ner.cfg").read_text(encoding="utf8") == before
    trained_meta(workdir / "out")
    assert set(spacy.load(workdir / "out" / "model-last").get_pipe("ner").labels) == DATA_LABELS


def test_without_dev_the_training_data_is_the_dev_set_and_lang_is_kept(workdir):
    code, out, err = run_cli("init-config", "de.cfg", "--train", "train.jsonl", "--lang", "de", cwd=workdir)
    assert code == 0, out + err
    assert "No --dev: the dev set is the training data (train.jsonl)" in said(out + err)
    config = load_config(workdir / "de.cfg")
    check_package_pieces(config, "train.jsonl", "train.jsonl")
    assert config["nlp"]["lang"] == "de"
    nlp = spacy.util.load_model_from_config(config, auto_fill=False, validate=True)
    assert nlp.lang == "de"


def test_dev_note_only_without_dev(workdir):
    _, with_dev = make_config("train.jsonl", "dev.jsonl")
    _, without = make_config("train.jsonl")
    assert not any("--dev" in note for note in with_dev)
    assert [note for note in without if note.startswith("No --dev")] == [
        "No --dev: the dev set is the training data (train.jsonl), so dev scores measure how well ner fits "
        "what it learned from, and model-best is picked on them; give --dev"]


@pytest.mark.parametrize("args, missing, what", [
    (("no-train.jsonl",), "no-train.jsonl", "the training data (--train)"),
    (("train.jsonl", "no-dev.jsonl"), "no-dev.jsonl", "the dev data (--dev)"),
])
def test_missing_data_path_is_an_error_naming_it(workdir, args, missing, what):
    with pytest.raises(UsageError) as error:
        make_config(*args)
    assert str(error.value) == f"{missing}: {what} does not exist; give an existing file or directory"
    flags = ["--train", args[0]] + (["--dev", args[1]] if len(args) > 1 else [])
    code, out, err = run_cli("init-config", "x.cfg", *flags, cwd=workdir)
    assert code == 2 and "Traceback" not in err, out + err
    assert f"{missing}: {what} does not exist" in said(out + err)
    assert not (workdir / "x.cfg").exists()


def test_unknown_model_exits_2(workdir):
    code, out, err = run_cli("init-config", "x.cfg", "--train", "train.jsonl", "--model", "no_such_pipeline",
                             cwd=workdir)
    assert code == 2 and "Traceback" not in err, out + err
    assert not (workdir / "x.cfg").exists()


# With --model


@pytest.fixture(scope="module")
def base_with_ner(tmp_path_factory) -> Path:
    """tok2vec + tagger + parser + ner, ner (like the others) listening to tok2vec."""
    path = saved_base(True, tmp_path_factory)
    nlp = spacy.load(path)
    assert "ner" in nlp.get_pipe("tok2vec").listener_map  # as built
    return path


@pytest.fixture(scope="module")
def base_without_ner(base_with_ner, tmp_path_factory) -> Path:
    """The same pipeline with its ner removed: tok2vec + tagger + parser."""
    nlp = spacy.load(base_with_ner)
    nlp.remove_pipe("ner")
    path = tmp_path_factory.mktemp("base-no-ner") / "model"
    nlp.to_disk(path)
    return path


def check_sourced(config: Config, base: Path) -> list:
    """Every component of `base` sourced from it; all but ner frozen. Returns the pipe names."""
    names = spacy.load(base).pipe_names
    for name in names:
        assert config["components"][name]["source"] == str(base), name
    pipeline = config["nlp"]["pipeline"]
    assert pipeline[: len(names)] == names and "ner" in pipeline
    assert sorted(config["training"]["frozen_components"]) == sorted(n for n in pipeline if n != "ner")
    return pipeline


def check_others_unchanged(base: Path, output: Path) -> spacy.language.Language:
    trained = spacy.load(output / "model-last")
    original = spacy.load(base)
    assert syntax_view(trained) == syntax_view(original)  # tags, dependencies, sentences
    # ner has its own embedding layer: nothing listens from ner to the shared tok2vec.
    assert "ner" not in trained.get_pipe("tok2vec").listener_map
    return trained


def score_table(output: str) -> tuple:
    """The header and rows of the table spaCy's ConsoleLogger prints during `spacy train`."""
    lines = [ANSI.sub("", line).split() for line in output.splitlines()]
    header = next(line for line in lines if line[:2] == ["E", "#"])
    columns = len(header) - header.count("LOSS")  # "LOSS NER" heads one column
    rows = [line for line in lines if len(line) == columns and line[0].isdigit() and line[1].isdigit()]
    return header, rows


def test_model_with_ner_sources_freezes_and_replaces_listeners(workdir, base_with_ner, capsys):
    code, out, err = run_cli("init-config", "ft.cfg", "--train", "train.jsonl", "--dev", "dev.jsonl",
                             "--model", base_with_ner, cwd=workdir)
    assert code == 0, out + err
    config = load_config(workdir / "ft.cfg")
    check_package_pieces(config, "train.jsonl", "dev.jsonl")
    pipeline = check_sourced(config, base_with_ner)
    assert pipeline == spacy.load(base_with_ner).pipe_names
    assert config["components"]["ner"]["replace_listeners"] == ["model.tok2vec"]
    # Fine-tuning rate; only ner's scores count, the frozen components' are null.
    assert config["training"]["optimizer"]["learn_rate"] == 3e-4
    assert config["training"]["optimizer"]["use_averages"] is False  # train() fine-tunes without them too
    # ... in the recipe's batches of 4 -> 32 examples, at dropout 0.2.
    assert config["training"]["batcher"]["size"]["start"] == 4 and "unit" not in config["training"]["batcher"]
    assert config["training"]["dropout"] == 0.2
    weights = config["training"]["score_weights"]
    assert {k: v for k, v in weights.items() if v is not None} == {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0}
    assert {"tag_acc", "dep_uas", "dep_las"} <= {k for k, v in weights.items() if v is None}
    assert "ner is fine-tuned at learn rate 0.0003" in said(out + err)

    capsys.readouterr()
    spacy_train(workdir / "ft.cfg", workdir / "out", overrides=STEPS)
    header, rows = score_table(capsys.readouterr().out)
    assert header == ["E", "#", "LOSS", "NER", "ENTS_F", "ENTS_P", "ENTS_R", "SCORE"]
    # SCORE (0-1) is ENTS_F (in %), not ENTS_F divided among the frozen components.
    assert len(rows) >= 2 and all(float(row[-1]) == pytest.approx(float(row[3]) / 100, abs=0.005) for row in rows)
    assert any(float(row[3]) > 0 for row in rows)
    trained = check_others_unchanged(base_with_ner, workdir / "out")
    assert DATA_LABELS <= set(trained.get_pipe("ner").labels)
    trained_meta(workdir / "out")


def test_model_without_ner_adds_one(workdir, base_without_ner):
    code, out, err = run_cli("init-config", "add.cfg", "--train", "train.jsonl", "--model", base_without_ner,
                             cwd=workdir)
    assert code == 0, out + err
    config = load_config(workdir / "add.cfg")
    check_package_pieces(config, "train.jsonl", "train.jsonl")
    pipeline = check_sourced(config, base_without_ner)
    assert pipeline == spacy.load(base_without_ner).pipe_names + ["ner"]
    assert "source" not in config["components"]["ner"]
    assert config["initialize"]["components"]["ner"]["labels"]["@readers"] == "spacy-ner-trainer.ner_labels.v1"
    # A new ner learns from scratch at spaCy's rate.
    assert config["training"]["optimizer"]["learn_rate"] == 0.001

    spacy_train(workdir / "add.cfg", workdir / "out", overrides=STEPS)
    trained = check_others_unchanged(base_without_ner, workdir / "out")
    assert set(trained.get_pipe("ner").labels) == DATA_LABELS
    assert trained.pipe_names == pipeline


# --gpu: a curated-transformer config

needs_extra = pytest.mark.skipif(importlib.util.find_spec("spacy_curated_transformers") is None,
                                 reason="the [transformers] extra is not installed (no spacy-curated-transformers)")


def test_gpu_without_the_transformers_extra_is_an_error(workdir, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "spacy_curated_transformers" else find_spec(name, *args))
    with pytest.raises(UsageError, match=r"^--gpu writes a transformer config, which needs spacy-curated-transformers: "
                                         r"pip install 'spacy-ner-trainer\[transformers\]'"):
        make_config("train.jsonl", "dev.jsonl", gpu=True)


@needs_extra
def test_gpu_config_with_a_local_bert_trains_with_spacy_train(workdir):
    from test_transformers import write_tiny_bert

    bert = write_tiny_bert(workdir / "bert")
    config, notes = make_config("train.jsonl", "dev.jsonl", gpu=True, transformer="bert")
    config.to_disk(workdir / "trf.cfg")
    config = load_config(workdir / "trf.cfg")
    check_package_pieces(config, "train.jsonl", "dev.jsonl")
    assert config["nlp"]["pipeline"] == ["transformer", "ner"]
    model = config["components"]["transformer"]["model"]
    sizes = json.loads((bert / "config.json").read_text(encoding="utf8"))
    assert model["@architectures"] == "spacy-curated-transformers.BertTransformer.v1"
    assert (model["vocab_size"], model["hidden_width"], model["num_hidden_layers"], model["model_max_length"]) == \
        (sizes["vocab_size"], 32, 2, 64)
    listener = config["components"]["ner"]["model"]["tok2vec"]
    assert listener["@architectures"] == "spacy-curated-transformers.LastTransformerLayerListener.v1"
    assert (listener["upstream"], listener["width"]) == ("transformer", 32)
    loaders = config["initialize"]["components"]["transformer"]
    assert loaders == {"piecer_loader": {"@model_loaders": "spacy-curated-transformers.WordpieceLoader.v1",
                                         "path": str(Path("bert") / "vocab.txt"), "lowercase": False}}
    assert "bert has no pytorch_model.bin: the transformer starts from random weights" in notes
    assert config["system"]["gpu_allocator"] == "pytorch"
    assert config["training"]["batcher"]["unit"] == "words"
    assert config["training"]["optimizer"]["learn_rate"]["@schedules"] == "warmup_linear.v1"
    if numpy_breaks_transformer_training():
        assert any("cannot train a transformer under numpy >= 2.4" in note for note in notes)
        pytest.skip("spacy-curated-transformers cannot train a transformer under numpy >= 2.4")

    spacy_train(workdir / "trf.cfg", workdir / "out", overrides={"training.max_steps": 4, "training.eval_frequency": 2})
    nlp = spacy.load(workdir / "out" / "model-last")
    assert nlp.pipe_names == ["transformer", "ner"]
    assert set(nlp.get_pipe("ner").labels) == DATA_LABELS
    assert nlp.get_pipe("transformer").listening_components == ["ner"]
    trained_meta(workdir / "out")


@needs_extra
def test_gpu_default_transformer_is_roberta_base_from_the_hub(workdir):
    config, notes = make_config("train.jsonl", "dev.jsonl", gpu=True)
    model = config["components"]["transformer"]["model"]
    assert model["@architectures"] == "spacy-curated-transformers.RobertaTransformer.v1"
    assert model["vocab_size"] == 50265
    assert model["piece_encoder"] == {"@architectures": "spacy-curated-transformers.ByteBpeEncoder.v1"}
    loaders = config["initialize"]["components"]["transformer"]
    assert loaders["encoder_loader"] == {"@model_loaders": "spacy-curated-transformers.HFTransformerEncoderLoader.v1",
                                         "name": "roberta-base"}
    assert loaders["piecer_loader"]["name"] == "roberta-base"
    assert any(note.startswith("roberta-base: its weights and pieces are downloaded from the Hugging Face hub")
               for note in notes)


@needs_extra
@pytest.mark.parametrize("kwargs, message", [
    ({"transformer": "bert"}, r"^--transformer bert: a transformer config is a GPU config; add --gpu$"),
    ({"gpu": True, "transformer": "no-such-model"}, r"^--transformer no-such-model: not a local folder, and not one of "
                                                    r"roberta-base, bert-base-cased, bert-base-uncased"),
    ({"gpu": True, "transformer": "roberta"}, r"^roberta: a local --transformer must be a BERT .* this one is 'roberta'"),
])
def test_transformer_choices_that_cannot_work_are_refused(workdir, kwargs, message):
    (workdir / "roberta").mkdir()
    (workdir / "roberta" / "config.json").write_text(json.dumps({"model_type": "roberta"}), encoding="utf8")
    with pytest.raises(UsageError, match=message):
        make_config("train.jsonl", "dev.jsonl", **kwargs)
