"""What a pipeline is made of: the `ner` to train, the layer it listens to, whether it has weights."""
import copy
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

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


# The model of a new `ner`: the one `spacy init config -p ner -o efficiency` trains, its
# tok2vec inside the ner. Its embedding tables (5000/1000/2500/2500 rows) are larger than those
# of spaCy's bare "ner" factory (2000/1000/1000/1000): bench/bench_best.py, README "Benchmarks".
NEW_NER_MODEL: Dict[str, Any] = {
    "@architectures": "spacy.TransitionBasedParser.v2", "state_type": "ner", "extra_state_tokens": False,
    "hidden_width": 64, "maxout_pieces": 2, "use_upper": True, "nO": None,
    "tok2vec": {
        "@architectures": "spacy.Tok2Vec.v2",
        "embed": {"@architectures": "spacy.MultiHashEmbed.v2", "width": 96, "attrs": ["NORM", "PREFIX", "SUFFIX", "SHAPE"],
                  "rows": [5000, 1000, 2500, 2500], "include_static_vectors": False},
        "encode": {"@architectures": "spacy.MaxoutWindowEncoder.v2", "width": 96, "depth": 4, "window_size": 1,
                   "maxout_pieces": 3},
    },
}
NEW_NER = "ner_new"  # the copy of a trained ner that learns the new labels (keep_original)
CONFIDENT_NER = "ner_confident"  # the kept ner's confident entities, set before the copy's (confident.py)


def prepare_ner(nlp: Language, keep_original: bool = False) -> Tuple[Any, bool, List[str]]:
    """The `ner` to train, whether it has weights to resume from, and the components to train:
    `ner`, or `ner` and the untrained tok2vec or transformer it listens to. A `ner` listening
    to a trained one gets its own copy of it (Language.replace_listeners).

    Args:
        nlp (Language): the pipeline; a `ner` (NEW_NER_MODEL) is added when it has none.
        keep_original (bool): leave the trained `ner` as it is and train a copy of it, added
            right before it (see copy_ner).
    RETURNS (Tuple[Any, bool, List[str]]): the ner to train, whether it resumes, the components to train.
    """
    if "ner" in nlp.pipe_names:
        ner = component(nlp, "ner")
    else:
        ner = nlp.add_pipe("ner", last=True, config={"model": copy.deepcopy(NEW_NER_MODEL)})
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
    resumes = bool(getattr(ner, "move_names", None)) and has_weights(ner)
    if keep_original and resumes:
        name = copy_ner(nlp)
        return component(nlp, name), True, [name]
    return ner, resumes, trained


def raise_bar(ner: Any, labels: Any, margin: float) -> None:
    """Makes `ner` start an entity of these labels only where that move scores `margin` more
    than it did: the bias of their B- and U- moves is lowered by `margin`.

    Args:
        ner (Any): a trained ner.
        labels (Any): the labels whose entities need the margin.
        margin (float): in the units of the ner's scores (logits).
    """
    wanted = set(labels)
    upper = ner.model.get_ref("upper")
    bias = upper.get_param("b").copy()
    for i in range(ner.moves.n_moves):
        move = ner.moves.get_class_name(i)
        if move[:2] in ("B-", "U-") and move[2:] in wanted:
            bias[i] -= margin
    upper.set_param("b", bias)


@contextmanager
def barred(ner: Any, bars: Sequence[Tuple[Sequence[str], float]]) -> Iterator[None]:
    """Within the block, `ner` has raise_bar applied for each (labels, margin) of `bars`;
    afterwards its bias is exactly what it was."""
    upper = ner.model.get_ref("upper")
    saved = upper.get_param("b").copy()
    for labels, margin in bars:
        raise_bar(ner, labels, margin)
    try:
        yield
    finally:
        upper.set_param("b", saved)


NEVER = -1e4  # the score of a move a ner only makes where a preset entity forces it


def follow_labels(ner: Any, labels: Any) -> None:
    """Gives a trained `ner` moves for the labels it does not know that it never chooses
    itself, only where an entity set before it (by a copy that learned them, see copy_ner)
    forces them.

    Without them, spaCy would add the moves the first time such an entity reached the ner, with
    zero weights, and a zero score beats many a trained move: the original would start finding
    entities of labels it never learned. Its own predictions stay exactly as they were.

    Args:
        ner (Any): the trained ner.
        labels (Any): the labels to follow; those it knows are left alone.
    """
    new = [label for label in labels if label not in ner.labels]
    for label in new:
        ner.add_label(label)
    # Their I- and L- moves can only follow a B- move, which it then never starts itself.
    raise_bar(ner, new, -NEVER)


def copy_ner(nlp: Language, name: str = "ner", new_name: Optional[str] = None, before: Optional[str] = None) -> str:
    """Adds a copy of the trained component `name` (weights and labels) right before it.

    The copy's entities come first: a later `ner` keeps the entities already set on a doc (they
    constrain its moves) and finds its own everywhere else. So the copy can learn new labels
    while the original, left unchanged, still finds what it always found around them.

    Args:
        nlp (Language): the pipeline; `name` must not listen to a shared tok2vec (prepare_ner
            gives it its own first).
        name (str): the component to copy.
        new_name (Optional[str]): the copy's name; None: free_name(nlp, NEW_NER).
        before (Optional[str]): the component to place it before; None: `name`.
    RETURNS (str): the copy's name.
    """
    if new_name is None:
        new_name = free_name(nlp, NEW_NER)
    config = copy.deepcopy(dict(nlp.config["components"][name]))
    factory = config.pop("factory")
    nlp.add_pipe(factory, name=new_name, config=config, before=before or name)
    component(nlp, new_name).from_bytes(component(nlp, name).to_bytes(exclude=["vocab"]), exclude=["vocab"])
    return new_name


def free_name(nlp: Language, name: str) -> str:
    """`name`, or name_2, name_3, ... when the pipeline has it (a pipeline fine-tuned before)."""
    free, number = name, 1
    while free in nlp.component_names:
        number += 1
        free = f"{name}_{number}"
    return free


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


def follow_labels_v1(
    component_name: str = "ner",
    labels: Union[Sequence[str], Dict[str, Dict[str, int]]] = (),
    copy_name: Optional[str] = None,
    confident_name: Optional[str] = None,
    confident_margin: Optional[float] = None,
) -> Callable[[Language], Language]:
    """Registered as spacy-ner-trainer.follow_labels.v1, for [initialize.after_init]: the frozen
    original `ner` of a config whose copy learns new labels (init-config --model) gets them as
    moves it only makes where the copy's entities force them (see follow_labels).

    Args:
        component_name (str): the frozen ner.
        labels: the labels, or the move table spacy-ner-trainer.ner_labels.v1 reads.
        copy_name (Optional[str]): the copy, sourced from the same ner. spaCy sources both
            names from one loaded pipeline, as one and the same object, so training the copy
            would train the original: the copy is made a copy here (copy_ner).
        confident_name (Optional[str]): a third name sourced from the same ner, placed before
            the copy: made a copy here too, it sets the original's entities it is sure of by
            `confident_margin` before the copy runs (confident.confident_first).
        confident_margin (Optional[float]): needed with confident_name (init-config
            calibrates it on the training data, confident.calibrate).
    RETURNS (Callable[[Language], Language]): the callback.
    """
    names = sorted({label for moves in labels.values() for label in moves if label}) if isinstance(labels, dict) \
        else list(labels)
    if confident_name is not None and confident_margin is None:
        raise UsageError(f"follow_labels.v1: confident_name {confident_name!r} needs its confident_margin "
                         "(python -m spacy_ner_trainer init-config --model writes it)")
    # (Imported here: confident.py builds on this module.)
    from .confident import confident_first

    def follow(nlp: Language) -> Language:
        original = component(nlp, component_name)
        kept = [label for label in original.labels if label not in set(names)]
        for name in (copy_name, confident_name):
            if name is not None and component(nlp, name) is original:
                # (component_names: spaCy calls this with the frozen components disabled.)
                before = nlp.component_names[nlp.component_names.index(name) + 1]
                nlp.remove_pipe(name)
                copy_ner(nlp, component_name, name, before=before)
        follow_labels(original, names)
        if confident_name is not None and confident_margin is not None:  # (checked above: both or neither)
            follow_labels(component(nlp, confident_name), names)
            confident_first(component(nlp, confident_name), kept, confident_margin)
        return nlp

    return follow
