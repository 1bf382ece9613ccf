"""What a pipeline is made of: the `ner` to train, the layer it listens to, whether it has weights."""
from typing import Any, List, Optional, Set, Tuple

from spacy.language import Language


def ner_labels(nlp: Language) -> Set[str]:
    """The labels the pipeline's `ner` predicts; empty without one."""
    return set(nlp.get_pipe("ner").labels) if "ner" in nlp.pipe_names else set()


def prepare_ner(nlp: Language) -> Tuple[Any, bool, List[str]]:
    """The `ner` to train, whether it has weights to resume from, and the components to train:
    `ner`, or `ner` and the untrained tok2vec it listens to."""
    ner = nlp.get_pipe("ner") if "ner" in nlp.pipe_names else nlp.add_pipe("ner", last=True)
    trained = ["ner"]
    upstream = listened_by(nlp, "ner")
    if upstream is not None:
        if has_weights(nlp.get_pipe(upstream)):
            # Training through the listener would change the shared tok2vec/transformer and
            # with it every other component's output: ner gets its own copy instead.
            nlp.replace_listeners(upstream, "ner", ["model.tok2vec"])
        else:
            trained.insert(0, upstream)
    return ner, bool(ner.move_names) and has_weights(ner), trained


def has_weights(component: Any) -> bool:
    """Whether a component's model has been initialized (one without a model counts as ready)."""
    model = getattr(component, "model", None)
    if model is None or model is True:
        return True
    return any(node.has_param(name) is True for node in model.walk() for name in node.param_names)


def listened_by(nlp: Language, name: str) -> Optional[str]:
    """The component (tok2vec, transformer) whose output component `name` listens to."""
    for upstream, component in nlp.pipeline:
        if name in getattr(component, "listening_components", []):
            return upstream
    return None
