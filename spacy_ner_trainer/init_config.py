"""A complete `spacy train` config that uses this package's reader, labels, batcher and callback."""
import importlib.util
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import spacy
from spacy.cli.init_config import init_config
from thinc.api import Config

from .batching import DEFAULT_BUFFER_SIZE
from .loop import DEFAULT_DROPOUT
from .pipeline import listened_by


def _reader(path: str) -> Dict[str, Any]:
    return {"@readers": "spacy-ner-trainer.NerCorpus.v1", "path": path}


def _sourced_config(model: str) -> Tuple[Config, bool]:
    """The config sourcing every component of `model`, and whether it has an `ner` already."""
    nlp = spacy.load(model)
    config = init_config(lang=nlp.lang, pipeline=["ner"], optimize="efficiency")
    pipeline = list(nlp.pipe_names)
    components: Dict[str, Any] = {name: {"source": model} for name in pipeline}
    if "ner" in pipeline:
        if listened_by(nlp, "ner"):
            # ner gets its own copy of the shared layer: training it leaves the others alone.
            components["ner"]["replace_listeners"] = ["model.tok2vec"]
    else:
        pipeline.append("ner")
        # A new ner with its own embedding layer, spaCy's default.
        components["ner"] = {"factory": "ner"}
    config["nlp"] = {**config["nlp"], "lang": nlp.lang, "pipeline": pipeline}
    config["components"] = components
    config["training"]["frozen_components"] = [name for name in pipeline if name != "ner"]
    config["initialize"]["before_init"] = {
        "@callbacks": "spacy.copy_from_base_model.v1", "tokenizer": model, "vocab": model,
    }
    return config, "ner" in nlp.pipe_names


def make_config(
    train: Union[str, Path],
    dev: Optional[Union[str, Path]] = None,
    *,
    model: Optional[str] = None,
    lang: str = "en",
    gpu: bool = False,
) -> Config:
    """Build the config `init-config` writes.

    Args:
        train (Union[str, Path]): training data, read with NerCorpus.v1.
        dev (Optional[Union[str, Path]]): dev data; without it, the training data is the dev set.
        model (Optional[str]): base pipeline, a package name or path: `ner` is sourced from it
            (or added), every other component is sourced and frozen, listeners are replaced.
        lang (str): language of a new pipeline, without `model`.
        gpu (bool): the GPU settings (a transformer, if spacy-transformers is installed).
    RETURNS (Config): the config.
    """
    has_ner = False
    if model is not None:
        config, has_ner = _sourced_config(model)
    else:
        transformer = gpu and importlib.util.find_spec("spacy_transformers") is not None
        config = init_config(lang=lang, pipeline=["ner"], optimize="accuracy" if transformer else "efficiency",
                             gpu=transformer)
    config["paths"]["train"] = str(train)
    config["paths"]["dev"] = str(dev if dev is not None else train)
    config["corpora"] = {"train": _reader("${paths.train}"), "dev": _reader("${paths.dev}")}
    if has_ner:
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
    config["training"]["dropout"] = DEFAULT_DROPOUT
    config["training"]["batcher"] = {
        "@batchers": "spacy-ner-trainer.shuffled_batches.v1",
        "buffer_size": DEFAULT_BUFFER_SIZE,
        "seed": 0,
        "size": {"@schedules": "compounding.v1", "start": 4, "stop": 32, "compound": 1.001},
    }
    config["training"]["before_to_disk"] = {"@callbacks": "spacy-ner-trainer.verify.v1", "max_examples": 200}
    if gpu:
        config["system"]["gpu_allocator"] = "pytorch"
    return Config(config)
