"""What a pipeline is made of: the `ner` to train, the layer it listens to, whether it has weights."""
from typing import Any, List, Optional, Set, Tuple

import numpy
from spacy.language import Language
from spacy.tokens import Doc

from .errors import UsageError


def ner_labels(nlp: Language) -> Set[str]:
    """The labels the pipeline's `ner` predicts; empty without one."""
    return set(component(nlp, "ner").labels) if "ner" in nlp.pipe_names else set()


def component(nlp: Language, name: str) -> Any:
    """nlp.get_pipe, typed for what a trainable component has (labels, model, to_bytes, ...)."""
    return nlp.get_pipe(name)


def prepare_ner(nlp: Language) -> Tuple[Any, bool, List[str]]:
    """The `ner` to train, whether it has weights to resume from, and the components to train:
    `ner`, or `ner` and the untrained tok2vec or transformer it listens to. A `ner` listening
    to a trained one gets its own copy of it (Language.replace_listeners)."""
    ner = component(nlp, "ner") if "ner" in nlp.pipe_names else nlp.add_pipe("ner", last=True)
    trained = ["ner"]
    upstream = listened_by(nlp, "ner")
    if upstream is not None:
        if has_weights(nlp.get_pipe(upstream)):
            # Training through the listener would change the shared tok2vec/transformer and
            # with it every other component's output: ner gets its own copy instead.
            nlp.replace_listeners(upstream, "ner", ["model.tok2vec"])
        else:
            _check_trainable(nlp, upstream)
            trained.insert(0, upstream)
    return ner, bool(getattr(ner, "move_names", None)) and has_weights(ner), trained


def has_weights(component: Any) -> bool:
    """Whether a component's model has been initialized (one without a model counts as ready).
    A transformer (spacy-curated-transformers) holds its weights in PyTorch from the start:
    it counts as initialized once its piece encoder has a vocabulary."""
    model = getattr(component, "model", None)
    if model is None or model is True:
        return True
    if any(node.has_param(name) is True for node in model.walk() for name in node.param_names):
        return True
    return model.has_ref("piece_encoder") and _encodes(model.get_ref("piece_encoder"), component.vocab)


def _encodes(piece_encoder: Any, vocab: Any) -> bool:
    # Every piece encoder raises on input until a loader (initialize) or from_disk gives it
    # its vocabulary, and none has a public flag for it.
    try:
        piece_encoder.predict([Doc(vocab, words=["a"])])
    except (RuntimeError, ValueError, KeyError):
        return False
    return True


def numpy_breaks_transformer_training() -> bool:
    """Whether spacy-curated-transformers would crash updating a transformer component here.

    Its 0.3 releases (the last for spaCy 3) add up the transformer's loss in a one-element array
    and call float() on it (pipeline/transformer.py), which numpy 2.4 refuses with a TypeError
    in the middle of the first update.
    """
    return tuple(int(part) for part in numpy.__version__.split(".")[:2]) >= (2, 4)


def _check_trainable(nlp: Language, name: str) -> None:
    """Refuse, before anything changes, to train a curated transformer where it would crash."""
    if nlp.get_pipe_meta(name).factory == "curated_transformer" and numpy_breaks_transformer_training():
        raise UsageError(
            f"{name}: spacy-curated-transformers cannot train a transformer under numpy "
            f"{numpy.__version__} (it needs numpy < 2.4): install the [transformers] extra, which "
            "pins it, or start from a pipeline whose transformer is trained (ner then trains its own copy)")


def listened_by(nlp: Language, name: str) -> Optional[str]:
    """The component (tok2vec, transformer) whose output component `name` listens to."""
    for upstream, component in nlp.pipeline:
        if name in getattr(component, "listening_components", []):
            return upstream
    return None
