"""spaCy's own `train` driven by a config that uses the registered reader, labels, batcher and callback."""
import pytest
import spacy
import srsly

from spacy_ner_trainer import NerCorpus, verify
from pipelines import conll_counts, ncbi_path


# spaCy's train with the registered pieces

CONFIG = """
[paths]
train = null
dev = null

[system]
seed = 0
gpu_allocator = null

[nlp]
lang = "en"
pipeline = ["ner"]
batch_size = 256

[components]

[components.ner]
factory = "ner"

[corpora]

[corpora.train]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${paths.train}
limit = 200

[corpora.dev]
@readers = "spacy-ner-trainer.NerCorpus.v1"
path = ${paths.dev}
limit = 100

[training]
seed = ${system.seed}
gpu_allocator = ${system.gpu_allocator}
dropout = 0.2
max_epochs = 0
max_steps = 30
eval_frequency = 15

[training.batcher]
@batchers = "spacy-ner-trainer.shuffled_batches.v1"
buffer_size = 64
seed = 0

[training.batcher.size]
@schedules = "compounding.v1"
start = 4
stop = 32
compound = 1.001

[training.before_to_disk]
@callbacks = "spacy-ner-trainer.verify.v1"
max_examples = 50

[initialize]

[initialize.components]

[initialize.components.ner]

[initialize.components.ner.labels]
@readers = "spacy-ner-trainer.ner_labels.v1"
path = ${paths.train}
"""


@pytest.fixture(scope="module")
def ncbi():
    train_path, dev_path = ncbi_path("train"), ncbi_path("devel")
    if train_path is None or dev_path is None:
        pytest.skip("the NCBI-disease corpus is not available under shared/data/ncbi-disease")
    return train_path, dev_path


@pytest.mark.parametrize("max_epochs", [0, -1], ids=["in-memory", "streamed"])
def test_spacy_train_with_registered_pieces(ncbi, tmp_path, max_epochs):
    from spacy.cli.train import train as spacy_train

    train_path, dev_path = ncbi
    config_path = tmp_path / "config.cfg"
    config_path.write_text(CONFIG, encoding="utf8")
    spacy_train(config_path, tmp_path / "out", overrides={
        "paths.train": str(train_path), "paths.dev": str(dev_path),
        "training.max_epochs": max_epochs,
    })
    _, _, train_ents = conll_counts(train_path, 50)
    _, _, dev_ents = conll_counts(dev_path, 50)
    for name in ("model-best", "model-last"):
        model = tmp_path / "out" / name
        meta = srsly.read_json(model / "meta.json")
        assert "spacy_ner_trainer" in meta, name
        reports = meta["spacy_ner_trainer"]["verify"]
        assert set(reports) == {"train", "dev"}
        for key, expected in (("train", train_ents), ("dev", dev_ents)):
            report = reports[key]
            assert "ok" in report and report["failures"] == [] or not report["ok"]
            assert report["n_examples"] == 50  # max_examples of a 200 / 100 example corpus
            # A summary, not the sentences: counts, scores and at most 20 mismatches.
            assert len(report["mismatches"]) <= 20 <= report["n_mismatches"] or \
                len(report["mismatches"]) == report["n_mismatches"]
            assert "round_trip_diffs" not in report and "confusion" not in report
            assert {label: s["support"] for label, s in report["per_label"].items()} == expected
        # The report describes the model it ships with.
        assert len(srsly.json_dumps(meta["spacy_ner_trainer"])) < 40_000
        nlp = spacy.load(model)
        assert nlp.get_pipe("ner").labels == ("Disease",)
        again = verify(nlp, NerCorpus(dev_path, limit=50), min_recall=0.0, round_trip=False)
        assert reports["dev"]["recall"] == pytest.approx(again.recall)
        assert reports["dev"]["precision"] == pytest.approx(again.precision)
