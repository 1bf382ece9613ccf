"""train() on pipelines whose `ner` listens to a transformer (spacy-curated-transformers, the
[transformers] extra): a trained transformer keeps its output for its other listeners while ner
trains its own copy; an untrained one trains together with ner. The transformer is a tiny,
randomly initialised BERT whose sizes (config.json) and WordPiece vocabulary of a few hundred
pieces these tests write to disk; nothing comes from a hub."""
import json
from pathlib import Path
from typing import Dict, List

import numpy
import pytest
import spacy
from spacy.language import Language
from spacy.util import fix_random_seed, load_model_from_config
from thinc.api import Config

from spacy_ner_trainer import train
from spacy_ner_trainer.errors import UsageError
from spacy_ner_trainer.pipeline import has_weights, listened_by, numpy_breaks_transformer_training
from pipelines import HELD_TEXTS, NEW_NER_DATA, syntax_examples, syntax_records

torch = pytest.importorskip("torch", reason="the [transformers] extra is not installed (no torch)")
pytest.importorskip("spacy_curated_transformers",
                    reason="the [transformers] extra is not installed (no spacy-curated-transformers)")

# The sizes of an HF BERT config.json (its key names), tiny.
TINY_BERT = {
    "model_type": "bert", "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,
    "num_hidden_layers": 2, "max_position_embeddings": 64, "type_vocab_size": 2, "hidden_act": "gelu",
    "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "pad_token_id": 0,
}
SPECIAL_PIECES = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
NUMPY_REFUSES = numpy_breaks_transformer_training()


def wordpiece_vocab() -> List[str]:
    """The special pieces, every character alone and as a continuation (##c), and the whole
    words of the test data: a few hundred pieces."""
    nlp = spacy.blank("en")
    words = {w for record in syntax_records() for w in record["words"]}
    words |= {t.text for text, _ in NEW_NER_DATA + [(t, None) for t in HELD_TEXTS] for t in nlp(text)}
    chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz.,!?'-0123456789"))
    return SPECIAL_PIECES + chars + ["##" + c for c in chars] + sorted(words - set(chars))


def write_tiny_bert(path: Path) -> Path:
    """An HF-style BERT folder, without weights: config.json (the sizes) and vocab.txt."""
    path.mkdir(parents=True, exist_ok=True)
    vocab = wordpiece_vocab()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    (path / "config.json").write_text(json.dumps({**TINY_BERT, "vocab_size": len(vocab)}), encoding="utf8")
    return path


def transformer_module(nlp: Language) -> "torch.nn.Module":
    """The PyTorch encoder inside the pipeline's transformer component."""
    return nlp.get_pipe("transformer").model.get_ref("transformer").shims[0]._model


def state(module: "torch.nn.Module") -> Dict[str, numpy.ndarray]:
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in module.state_dict().items()}


def listener(width_ref: str = "${components.transformer.model.hidden_width}") -> str:
    return ("@architectures = \"spacy-curated-transformers.LastTransformerLayerListener.v1\"\n"
            f"width = {width_ref}\npooling = {{\"@layers\":\"reduce_mean.v1\"}}\nupstream = \"transformer\"")


def pipeline_config(bert: Path, listeners: List[str]) -> str:
    """The config a user writes for a transformer with `listeners` ("tagger", "ner") on top."""
    sizes = json.loads((bert / "config.json").read_text(encoding="utf8"))
    parts = [f"""
[nlp]
lang = "en"
pipeline = {json.dumps(["transformer"] + listeners)}

[components]

[components.transformer]
factory = "curated_transformer"

[components.transformer.model]
@architectures = "spacy-curated-transformers.BertTransformer.v1"
vocab_size = {sizes["vocab_size"]}
hidden_width = {sizes["hidden_size"]}
intermediate_width = {sizes["intermediate_size"]}
num_attention_heads = {sizes["num_attention_heads"]}
num_hidden_layers = {sizes["num_hidden_layers"]}
max_position_embeddings = {sizes["max_position_embeddings"]}
model_max_length = {sizes["max_position_embeddings"]}
piece_encoder = {{"@architectures":"spacy-curated-transformers.BertWordpieceEncoder.v1"}}
with_spans = {{"@architectures":"spacy-curated-transformers.WithStridedSpans.v1","stride":48,"window":64}}
"""]
    if "tagger" in listeners:
        parts.append(f"""
[components.tagger]
factory = "tagger"

[components.tagger.model]
@architectures = "spacy.Tagger.v2"
nO = null

[components.tagger.model.tok2vec]
{listener()}
""")
    if "ner" in listeners:
        parts.append(f"""
[components.ner]
factory = "ner"

[components.ner.model]
@architectures = "spacy.TransitionBasedParser.v2"
state_type = "ner"
hidden_width = 32
maxout_pieces = 2
use_upper = false
nO = null

[components.ner.model.tok2vec]
{listener()}
""")
    parts.append(f"""
[initialize]

[initialize.components]

[initialize.components.transformer]

[initialize.components.transformer.piecer_loader]
@model_loaders = "spacy-curated-transformers.WordpieceLoader.v1"
path = {json.dumps(str(bert / "vocab.txt"))}
""")
    return "".join(parts)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny matrices: a second thread only adds overhead on a 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def base_path(bert, tmp_path_factory) -> Path:
    """transformer + tagger + ner, tagger and ner listening to the transformer, initialized on
    the tagged sentences (ner with PERSON and GPE) and saved: a trained pipeline, as far as
    train() can tell (its random BERT learns nothing from a few updates, so none are made)."""
    fix_random_seed(0)
    nlp = load_model_from_config(Config().from_str(pipeline_config(bert, ["tagger", "ner"])), auto_fill=True,
                                 validate=True)
    nlp.initialize(lambda: syntax_examples(nlp, with_ents=True))
    path = tmp_path_factory.mktemp("trf-base") / "model"
    nlp.to_disk(path)
    return path


def tagger_scores(nlp: Language, texts: List[str] = HELD_TEXTS) -> List[numpy.ndarray]:
    """What the tagger computes for `texts` (its scores, not just the argmax)."""
    docs = list(nlp.pipe(texts, disable=["ner"]))
    return [numpy.asarray(scores).copy() for scores in nlp.get_pipe("tagger").model.predict(docs)]


def test_has_weights_tells_an_initialized_transformer(bert, base_path):
    nlp = load_model_from_config(Config().from_str(pipeline_config(bert, ["ner"])), auto_fill=True)
    transformer = nlp.get_pipe("transformer")
    assert listened_by(nlp, "ner") == "transformer"
    assert not has_weights(transformer)  # random PyTorch weights, but no vocabulary yet
    nlp.initialize(lambda: syntax_examples(nlp, with_ents=True))
    assert has_weights(transformer)
    assert has_weights(spacy.load(base_path).get_pipe("transformer"))


def test_train_with_a_trained_transformer_gives_ner_its_own_copy(base_path, tmp_path):
    nlp = spacy.load(base_path)
    before_tags = tagger_scores(nlp)
    before_weights = state(transformer_module(nlp))
    assert set(nlp.get_pipe("transformer").listening_components) == {"tagger", "ner"}

    result = train(nlp, NEW_NER_DATA, n_iter=15, seed=0)

    assert result.resumed
    assert set(nlp.get_pipe("ner").labels) >= {"PERSON", "GPE", "FRUIT"}
    assert result.losses[-1] < result.losses[0]
    # ner no longer listens: the shared transformer, and so the tagger, are untouched.
    assert nlp.get_pipe("transformer").listening_components == ["tagger"]
    after_weights = state(transformer_module(nlp))
    assert all(numpy.array_equal(before_weights[k], after_weights[k]) for k in before_weights)
    for before, after in zip(before_tags, tagger_scores(nlp)):
        assert numpy.array_equal(before, after)
    # ner's copy of the transformer was trained: it differs from the shared one.
    ner_copy = [n for n in nlp.get_pipe("ner").model.walk() if n.name == "pytorch"]
    assert ner_copy, "ner holds no transformer of its own"
    copied = {k: v.detach().cpu().numpy() for k, v in ner_copy[0].shims[0]._model.state_dict().items()}
    assert any(not numpy.array_equal(before_weights[k], copied[k]) for k in before_weights)
    # The saved pipeline predicts what the trained one does, ner's copy included.
    nlp.to_disk(tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    texts = [text for text, _ in NEW_NER_DATA] + HELD_TEXTS
    assert [[(e.text, e.label_) for e in d.ents] for d in reloaded.pipe(texts)] == \
        [[(e.text, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    for before, after in zip(before_tags, tagger_scores(reloaded)):
        assert numpy.array_equal(before, after)


def new_transformer_ner(bert: Path) -> Language:
    fix_random_seed(0)
    return load_model_from_config(Config().from_str(pipeline_config(bert, ["ner"])), auto_fill=True, validate=True)


@pytest.mark.skipif(NUMPY_REFUSES, reason=f"numpy {numpy.__version__}: spacy-curated-transformers 0.3 "
                    "cannot update a transformer under numpy >= 2.4 (see the next test)")
def test_train_with_an_untrained_transformer_trains_both(bert):
    nlp = new_transformer_ner(bert)
    initial = state(transformer_module(nlp))

    result = train(nlp, NEW_NER_DATA, n_iter=15, seed=0)

    assert not result.resumed
    assert set(nlp.get_pipe("ner").labels) == {"PERSON", "GPE", "FRUIT"}
    assert result.losses[-1] < result.losses[0]
    # ner still listens to the shared transformer, which learned with it.
    assert nlp.get_pipe("transformer").listening_components == ["ner"]
    trained = state(transformer_module(nlp))
    assert any(not numpy.array_equal(initial[k], trained[k]) for k in initial)


@pytest.mark.skipif(not NUMPY_REFUSES, reason=f"numpy {numpy.__version__} < 2.4 trains transformers")
def test_untrained_transformer_under_numpy_2_4_is_refused_before_any_change(bert):
    nlp = new_transformer_ner(bert)
    with pytest.raises(UsageError, match=r"transformer: .*numpy < 2\.4.*\[transformers\] extra"):
        train(nlp, NEW_NER_DATA, n_iter=1, seed=0)
    assert not has_weights(nlp.get_pipe("ner"))
    assert nlp.get_pipe("transformer").listening_components == ["ner"]
