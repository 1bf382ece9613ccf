"""A complete `spacy train` config that uses this package's reader, labels, batcher and callback."""
import importlib.util
import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy
import spacy
from spacy.cli.init_config import init_config
from spacy.language import Language
from thinc.api import Config

from .batching import DEFAULT_BUFFER_SIZE
from .errors import UsageError
from .gpu import GPU_BATCH_SIZE, TRANSFORMER_LEARN_RATE, TRANSFORMER_WARMUP_STEPS
from .loop import DEFAULT_AVERAGE, DEFAULT_DROPOUT, DEFAULT_WORDS_BATCH_SIZE, FINE_TUNE_DROPOUT, FINE_TUNE_LEARN_RATE
from .labels import count_labels
from .confident import calibrate
from .pipeline import CONFIDENT_NER, NEW_NER, has_weights, listened_by, ner_labels, numpy_breaks_transformer_training
from .readers import NerCorpus

# --gpu without --transformer. Hub models whose sizes are their architecture's defaults, so
# the config needs only the vocabulary size: name -> (architecture, piece encoder, vocab_size).
DEFAULT_TRANSFORMER = "roberta-base"
HUB_TRANSFORMERS = {
    "roberta-base": ("RobertaTransformer", "ByteBpeEncoder", 50265),
    "bert-base-cased": ("BertTransformer", "BertWordpieceEncoder", 28996),
    "bert-base-uncased": ("BertTransformer", "BertWordpieceEncoder", 30522),
}
TRANSFORMER_MAX_STEPS = 20000  # spaCy's transformer configs: steps, evaluation, patience
NER_SCORE_WEIGHTS = {"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None}


def make_config(
    train: Union[str, Path],
    dev: Optional[Union[str, Path]] = None,
    *,
    model: Optional[str] = None,
    lang: str = "en",
    gpu: bool = False,
    transformer: Optional[str] = None,
    keep_original: Optional[bool] = None,
) -> Tuple[Config, List[str]]:
    """Build the config `init-config` writes, and the notes to show with it.

    Args:
        train (Union[str, Path]): training data, read with NerCorpus.v1; must exist.
        dev (Optional[Union[str, Path]]): dev data; must exist. Without it, the training data is
            the dev set (a note says so).
        model (Optional[str]): base pipeline, a package name or path: `ner` is sourced from it
            (or added), every other component is sourced and frozen, listeners are replaced, and
            only ner's scores count.
        lang (str): language of a new pipeline, without `model`.
        gpu (bool): a transformer (spacy-curated-transformers, the [transformers] extra) with
            `ner` listening to it, and GPU settings; without the extra, a UsageError.
        transformer (Optional[str]): with `gpu`: a local folder holding an HF BERT
            (config.json, vocab.txt, pytorch_model.bin if trained), or one of HUB_TRANSFORMERS,
            fetched from the Hugging Face hub when training starts; default DEFAULT_TRANSFORMER.
        keep_original (Optional[bool]): with a `model` whose ner is trained: keep that ner
            frozen and train a copy of it, `ner_new`, placed before it (as train() does); False
            fine-tunes the ner itself through RehearsalCorpus.v1. None: keep it whenever it
            knows labels the training data lacks.
    RETURNS (Tuple[Config, List[str]]): the config, and what the user should know about it.
    """
    _check_exists(train, "the training data (--train)")
    if dev is not None:
        _check_exists(dev, "the dev data (--dev)")
    if transformer is not None and not gpu:
        raise UsageError(f"--transformer {transformer}: a transformer config is a GPU config; add --gpu")
    notes: List[str] = []
    if dev is None:
        notes.append(f"No --dev: the dev set is the training data ({train}), so dev scores measure how well "
                     "ner fits what it learned from, and model-best is picked on them; give --dev")
    has_ner = False
    if model is not None:
        config, has_ner = _sourced_config(model, notes, train, keep_original)
        if gpu:
            config["system"]["gpu_allocator"] = "pytorch"
            notes.append("--gpu with --model: the model's own components are kept (no transformer is added)")
    elif gpu:
        config = _transformer_config(lang, transformer or DEFAULT_TRANSFORMER, notes)
    else:
        config = init_config(lang=lang, pipeline=["ner"], optimize="efficiency")
    config["paths"]["train"] = str(train)
    config["paths"]["dev"] = str(dev if dev is not None else train)
    config["corpora"] = {"train": _reader("${paths.train}"), "dev": _reader("${paths.dev}")}
    if has_ner and NEW_NER not in config["nlp"]["pipeline"]:
        # The sourced ner keeps the labels it knows while it learns the data's.
        config["corpora"]["train"] = {
            "@readers": "spacy-ner-trainer.RehearsalCorpus.v1",
            "corpus": config["corpora"]["train"],
            "source": model,
            "raw_path": None,
            "ratio": 1.0,
        }
    config["initialize"].setdefault("components", {})
    if not has_ner:
        config["initialize"]["components"]["ner"] = {
            "labels": {"@readers": "spacy-ner-trainer.ner_labels.v1", "path": "${paths.train}"}
        }
    config["training"]["batcher"] = {
        "@batchers": "spacy-ner-trainer.shuffled_batches.v1",
        "buffer_size": DEFAULT_BUFFER_SIZE,
        "seed": 0,
        "size": {"@schedules": "compounding.v1", "start": 4, "stop": 32, "compound": 1.001},
    }
    if gpu and model is None:
        # spaCy's transformer configs batch by padded size 2000 and drop what is longer alone.
        config["training"]["batcher"].update(
            {"size": GPU_BATCH_SIZE, "unit": "words", "tolerance": 0.2, "discard_oversize": True})
    elif has_ner:
        config["training"]["dropout"] = FINE_TUNE_DROPOUT
    else:
        # train()'s defaults for a new ner: 100 -> 1,000 words a batch, dropout 0.1.
        start, stop, compound = DEFAULT_WORDS_BATCH_SIZE
        config["training"]["batcher"].update(
            {"size": {"@schedules": "compounding.v1", "start": start, "stop": stop, "compound": compound},
             "unit": "words"})
        config["training"]["dropout"] = DEFAULT_DROPOUT
    if not has_ner and not gpu:
        # train()'s default for a new ner: spacy train scores and saves the averages too.
        config["training"]["optimizer"]["use_averages"] = DEFAULT_AVERAGE
    config["training"]["before_to_disk"] = {"@callbacks": "spacy-ner-trainer.verify.v1", "max_examples": 200}
    if gpu:
        notes.append("Train on the GPU: python -m spacy train CONFIG --gpu-id 0")
    return Config(config), notes


def _check_exists(path: Union[str, Path], what: str) -> None:
    if not Path(path).exists():
        raise UsageError(f"{path}: {what} does not exist; give an existing file or directory")


def _reader(path: str) -> Dict[str, Any]:
    return {"@readers": "spacy-ner-trainer.NerCorpus.v1", "path": path}


def _sourced_config(model: str, notes: List[str], train: Union[str, Path],
                    keep_original: Optional[bool]) -> Tuple[Config, bool]:
    """The config sourcing every component of `model`, and whether it has an `ner` already."""
    nlp = spacy.load(model)
    listened = listened_by(nlp, "ner")  # (before the calibration gives ner its own copy)
    config = init_config(lang=str(nlp.lang), pipeline=["ner"], optimize="efficiency")
    pipeline = list(nlp.pipe_names)
    components: Dict[str, Any] = {name: {"source": model} for name in pipeline}
    trained = "ner"
    if "ner" in pipeline and has_weights(nlp.get_pipe("ner")):
        kept = sorted(ner_labels(nlp) - set(count_labels(NerCorpus(train))))
        if keep_original is None:
            keep_original = bool(kept)
        if keep_original:
            trained = NEW_NER
            pipeline.insert(pipeline.index("ner"), NEW_NER)
            components[NEW_NER] = {"source": model, "component": "ner"}
            config["initialize"]["after_init"] = {
                "@callbacks": "spacy-ner-trainer.follow_labels.v1", "component_name": "ner", "copy_name": NEW_NER,
                "labels": {"@readers": "spacy-ner-trainer.ner_labels.v1", "path": "${paths.train}"},
            }
            notes.append(f"--model {model}: its ner is kept unchanged (frozen); '{NEW_NER}', a copy of it placed "
                         "before it, learns the data (--no-keep-original fine-tunes the ner itself)")
            margin = _confident_margin(nlp, train, kept)
            if margin is not None:
                pipeline.insert(pipeline.index(NEW_NER), CONFIDENT_NER)
                components[CONFIDENT_NER] = {"source": model, "component": "ner"}
                config["initialize"]["after_init"].update({"confident_name": CONFIDENT_NER, "confident_margin": margin})
                notes.append(f"--model {model}: '{CONFIDENT_NER}', another copy, sets the entities the original is "
                             f"sure of by a margin of {margin:g} (calibrated on {train}) before '{NEW_NER}' runs")
    if "ner" in pipeline:
        if listened:
            # ner gets its own copy of the shared layer: training it leaves the others alone
            # (a kept ner too: its copy, made from it, is then independent as well).
            components["ner"]["replace_listeners"] = ["model.tok2vec"]
        if trained == NEW_NER:
            # The copy of a kept ner has nothing of its own to keep: the rate stays the pipeline's.
            notes.append(f"--model {model}: {trained} learns at the pipeline's learn rate, "
                         f"{config['training']['optimizer']['learn_rate']:g} ([training.optimizer] learn_rate)")
        else:
            # Fine-tuning: spaCy's default rate (0.001) overwrites more of what ner knew.
            config["training"]["optimizer"]["learn_rate"] = FINE_TUNE_LEARN_RATE
            notes.append(f"--model {model}: {trained} is fine-tuned at learn rate {FINE_TUNE_LEARN_RATE:g} "
                         "([training.optimizer] learn_rate)")
    else:
        pipeline.append("ner")
        # A new ner with its own embedding layer, spaCy's default.
        components["ner"] = {"factory": "ner"}
        notes.append(f"--model {model} has no ner: a new one with its own embeddings learns at spaCy's "
                     f"default rate, {config['training']['optimizer']['learn_rate']:g}")
    frozen = [name for name in pipeline if name != trained]
    config["nlp"] = {**config["nlp"], "lang": nlp.lang, "pipeline": pipeline}
    config["components"] = components
    config["training"]["frozen_components"] = frozen
    # Frozen components score what they always scored: only ner's scores count, and
    # SCORE is ner's F (the others' weights are null, so spaCy neither shows nor weighs them).
    weights: Dict[str, Optional[float]] = {}
    for name in frozen:
        if name in nlp.pipe_names:  # the kept ner's confident pass scores as the ner does
            weights.update(dict.fromkeys(nlp.get_pipe_meta(name).default_score_weights or {}))
    config["training"]["score_weights"] = {**weights, **NER_SCORE_WEIGHTS}
    config["initialize"]["before_init"] = {
        "@callbacks": "spacy.copy_from_base_model.v1", "tokenizer": model, "vocab": model,
    }
    if frozen:
        notes.append(f"--model {model}: {', '.join(frozen)} sourced and frozen; only the entity scores count")
    return config, "ner" in nlp.pipe_names


def _confident_margin(nlp: Language, train: Union[str, Path], kept: List[str]) -> Optional[float]:
    """The kept ner's confident-pass margin, calibrated on the training data as train() does;
    None when no margin fits (no pass)."""
    upstream = listened_by(nlp, "ner")
    if upstream is not None:  # (this loaded copy only) the ner runs alone
        nlp.replace_listeners(upstream, "ner", ["model.tok2vec"])
    margin = calibrate(nlp.get_pipe("ner"), kept, NerCorpus(train)(nlp))
    return margin if math.isfinite(margin) else None


def _transformer_config(lang: str, transformer: str, notes: List[str]) -> Config:
    """A new pipeline: a curated transformer and a ner listening to it, with spaCy's transformer
    training settings."""
    if importlib.util.find_spec("spacy_curated_transformers") is None:
        raise UsageError("--gpu writes a transformer config, which needs spacy-curated-transformers: "
                         "pip install 'spacy-ner-trainer[transformers]' (or leave out --gpu for a CPU config)")
    model, loaders = _transformer_model(transformer, notes)
    if numpy_breaks_transformer_training():
        notes.append(f"numpy {numpy.__version__} here: spacy-curated-transformers cannot train a transformer "
                     "under numpy >= 2.4; where you train, install the [transformers] extra (it pins numpy < 2.4)")
    width = model.get("hidden_width", 768)
    config = init_config(lang=lang, pipeline=["ner"], optimize="efficiency")
    config["nlp"] = {**config["nlp"], "pipeline": ["transformer", "ner"], "batch_size": 128}
    config["components"] = {
        "transformer": {"factory": "curated_transformer", "all_layer_outputs": False, "frozen": False,
                        "model": model},
        "ner": {
            "factory": "ner",
            "model": {
                "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner",
                "extra_state_tokens": False, "hidden_width": 64, "maxout_pieces": 2, "use_upper": False,
                "nO": None,
                "tok2vec": {
                    "@architectures": "spacy-curated-transformers.LastTransformerLayerListener.v1",
                    "width": width, "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "transformer",
                    "grad_factor": 1.0,
                },
            },
        },
    }
    config["initialize"]["components"] = {"transformer": loaders}
    config["system"]["gpu_allocator"] = "pytorch"
    config["training"].update({
        "accumulate_gradient": 3, "dropout": 0.1, "patience": 1600, "max_epochs": 0,
        "max_steps": TRANSFORMER_MAX_STEPS, "eval_frequency": 200,
    })
    config["training"]["optimizer"]["learn_rate"] = {
        "@schedules": "warmup_linear.v1", "warmup_steps": TRANSFORMER_WARMUP_STEPS,
        "total_steps": TRANSFORMER_MAX_STEPS, "initial_rate": TRANSFORMER_LEARN_RATE,
    }
    return config


def _transformer_model(transformer: str, notes: List[str]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """The [components.transformer.model] block and the [initialize.components.transformer]
    loaders for a local HF BERT folder or a known hub name."""
    prefix = "spacy-curated-transformers."
    spans = {"@architectures": prefix + "WithStridedSpans.v1", "stride": 96, "window": 128}
    folder = Path(transformer)
    if folder.is_dir():
        config_path = folder / "config.json"
        if not config_path.is_file():
            raise UsageError(f"{config_path}: --transformer {transformer} has no config.json; give a folder "
                             f"holding an HF BERT (config.json, vocab.txt) or one of {', '.join(HUB_TRANSFORMERS)}")
        hf = json.loads(config_path.read_text(encoding="utf8"))
        if hf.get("model_type") != "bert" or not (folder / "vocab.txt").is_file():
            raise UsageError(f"{folder}: a local --transformer must be a BERT (model_type \"bert\" in "
                             f"config.json, and vocab.txt); this one is {hf.get('model_type')!r}. Use one of "
                             f"{', '.join(HUB_TRANSFORMERS)} from the hub")
        tokenizer_path = folder / "tokenizer_config.json"
        tokenizer = json.loads(tokenizer_path.read_text(encoding="utf8")) if tokenizer_path.is_file() else {}
        model = {"@architectures": prefix + "BertTransformer.v1", **_sizes(hf),
                 "piece_encoder": {"@architectures": prefix + "BertWordpieceEncoder.v1"}, "with_spans": spans}
        positions = model.get("max_position_embeddings", 512)
        # HF writes a huge model_max_length for "no limit": the position embeddings are the limit.
        model["model_max_length"] = min(int(tokenizer.get("model_max_length", positions)), positions)
        loaders: Dict[str, Any] = {"piecer_loader": {
            "@model_loaders": prefix + "WordpieceLoader.v1", "path": str(folder / "vocab.txt"),
            "lowercase": bool(tokenizer.get("do_lower_case", False)),
        }}
        weights = folder / "pytorch_model.bin"
        if weights.is_file():
            loaders["encoder_loader"] = {"@model_loaders": prefix + "PyTorchCheckpointLoader.v1", "path": str(weights)}
        else:
            notes.append(f"{folder} has no pytorch_model.bin: the transformer starts from random weights")
        return model, loaders
    if transformer not in HUB_TRANSFORMERS:
        raise UsageError(f"--transformer {transformer}: not a local folder, and not one of "
                         f"{', '.join(HUB_TRANSFORMERS)}; give a local HF BERT folder or one of those")
    architecture, encoder, vocab_size = HUB_TRANSFORMERS[transformer]
    model = {"@architectures": f"{prefix}{architecture}.v1", "vocab_size": vocab_size,
             "piece_encoder": {"@architectures": f"{prefix}{encoder}.v1"}, "with_spans": spans}
    loaders = {
        "piecer_loader": {"@model_loaders": prefix + "HFPieceEncoderLoader.v1", "name": transformer},
        "encoder_loader": {"@model_loaders": prefix + "HFTransformerEncoderLoader.v1", "name": transformer},
    }
    missing = "" if importlib.util.find_spec("transformers") else " (not installed here: pip install transformers)"
    notes.append(f"{transformer}: its weights and pieces are downloaded from the Hugging Face hub when training "
                 f"starts, which needs network access and the `transformers` package{missing}")
    return model, loaders


def _sizes(hf: Dict[str, Any]) -> Dict[str, Any]:
    """The architecture's size arguments read from an HF config.json, by
    spacy-curated-transformers' own table (as `spacy init fill-curated-transformer` does)."""
    from spacy_curated_transformers.cli.fill_config_transformer import (  # type: ignore[import-untyped]
        COMMON_ENTRYPOINT_PARAMS, ENTRYPOINT_PARAMS_TO_HF_CONFIG_KEYS, HfParamSource)

    sizes = {}
    for param, source in COMMON_ENTRYPOINT_PARAMS.items():
        key = ENTRYPOINT_PARAMS_TO_HF_CONFIG_KEYS.get(param, param)
        if source == HfParamSource.MODEL_CONFIG and key in hf:
            sizes[param] = hf[key]
    return sizes
