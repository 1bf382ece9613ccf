"""Checkpoints: weights, optimizer state, random states and position, saved atomically and restored exactly."""
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy
import srsly
from spacy.language import Language
from thinc.api import Optimizer, get_current_ops

from .pipeline import component
from .save import recover, write_atomically

STATE_FILE = "state.json"
BLOBS_FILE = "state.msgpack"
FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint that is missing, or was written by a run with other data or settings."""


@dataclass
class Position:
    """Where a run stands: the next batch to train is `batch` of `epoch` (0-based)."""

    epoch: int = 0
    batch: int = 0


@dataclass
class RunState:
    """Everything a run needs to go on exactly where it stopped, apart from the data."""

    position: Position = field(default_factory=Position)
    # Weights of the trained components, as Component.to_bytes() gives them.
    weights: Dict[str, bytes] = field(default_factory=dict)
    best_weights: Dict[str, bytes] = field(default_factory=dict)
    optimizer: Dict[str, Any] = field(default_factory=dict)
    # random's global state, numpy's global state, and the run's own shuffle generator: at the
    # position, and (for a position inside an epoch) at the start of that epoch.
    randomness: Dict[str, Any] = field(default_factory=dict)
    epoch_randomness: Dict[str, Any] = field(default_factory=dict)
    epoch_losses: Dict[str, float] = field(default_factory=dict)
    progress: Dict[str, Any] = field(default_factory=dict)  # TrainResult fields so far
    extra: Dict[str, bytes] = field(default_factory=dict)  # e.g. the epoch's rehearsal examples


def component_bytes(nlp: Language, names: List[str]) -> Dict[str, bytes]:
    return {name: _with_unseen(component(nlp, name)) for name in names}


def _with_unseen(proc: Any) -> bytes:
    # A transition model's moves not yet trained are masked, and to_bytes leaves them out.
    data = proc.to_bytes(exclude=["vocab"])
    attrs = getattr(getattr(proc, "model", None), "attrs", {})
    if "unseen_classes" not in attrs:
        return data
    msg = srsly.msgpack_loads(data)
    msg["unseen_classes"] = sorted(attrs["unseen_classes"])
    return srsly.msgpack_dumps(msg)


def load_component_bytes(nlp: Language, weights: Dict[str, bytes]) -> None:
    for name, data in weights.items():
        proc = component(nlp, name)
        proc.from_bytes(data, exclude=["vocab"])
        unseen = srsly.msgpack_loads(data).get("unseen_classes")
        if unseen is not None:
            proc.model.attrs["unseen_classes"].clear()
            proc.model.attrs["unseen_classes"].update(unseen)


def _param_keys(nlp: Language, names: List[str]) -> Dict[int, Tuple[str, int]]:
    """thinc keys optimizer state by model node id, which changes when a pipeline is reloaded:
    map each node id to (component, position of the node in the model's walk), which does not."""
    keys = {}
    for name in names:
        for i, node in enumerate(component(nlp, name).model.walk()):
            keys[node.id] = (name, i)
    return keys


def optimizer_state(optimizer: Optimizer, nlp: Language, names: List[str], steps: int) -> Dict[str, Any]:
    """Adam's moments, averages, update counts and the schedule position, keyed stably."""
    stable = _param_keys(nlp, names)
    ops = get_current_ops()

    def mapped(table: Optional[Dict]) -> Optional[Dict[str, Any]]:
        if table is None:
            return None
        out = {}
        for (node_id, param), value in table.items():
            if node_id in stable:
                name, i = stable[node_id]
                out[f"{name}|{i}|{param}"] = ops.to_numpy(value) if hasattr(value, "shape") else value
        return out

    return {
        "mom1": mapped(optimizer.mom1),
        "mom2": mapped(optimizer.mom2),
        "averages": mapped(optimizer.averages),
        "nr_update": mapped(dict(optimizer.nr_update)),
        "last_seen": mapped(dict(optimizer.last_seen)),
        "learn_rate": optimizer.learn_rate,
        "steps": steps,
    }


def restore_optimizer(optimizer: Optimizer, state: Dict[str, Any], nlp: Language, names: List[str]) -> int:
    """Put `optimizer_state` back into `optimizer` for this pipeline's nodes; returns the
    number of schedule steps taken, which the optimizer's schedules are advanced by."""
    by_stable = {stable: node_id for node_id, stable in _param_keys(nlp, names).items()}
    ops = get_current_ops()

    def unmapped(table: Optional[Dict[str, Any]], arrays: bool) -> Dict:
        out = {}
        for key, value in (table or {}).items():
            name, i, param = key.split("|", 2)
            node_id = by_stable[(name, int(i))]
            out[(node_id, param)] = ops.asarray(value).copy() if arrays else value
        return out

    optimizer.mom1 = unmapped(state["mom1"], True)
    optimizer.mom2 = unmapped(state["mom2"], True)
    if state["averages"] is not None:
        optimizer.averages = unmapped(state["averages"], True)
    optimizer.nr_update.clear()
    optimizer.nr_update.update(unmapped(state["nr_update"], False))
    optimizer.last_seen.clear()
    optimizer.last_seen.update(unmapped(state["last_seen"], False))
    for _ in range(state["steps"]):
        optimizer.step_schedules()
    optimizer.learn_rate = state["learn_rate"]
    return int(state["steps"])


def random_states(rng: random.Random) -> Dict[str, Any]:
    """random's and numpy's global states (dropout masks and initialisation draw from them)
    and the run's shuffle generator."""
    return {"python": random.getstate(), "numpy": numpy.random.get_state(), "rng": rng.getstate()}


def set_random_states(rng: random.Random, states: Dict[str, Any]) -> None:
    random.setstate(states["python"])
    numpy.random.set_state(states["numpy"])
    rng.setstate(states["rng"])


def save_checkpoint(path: Path, fingerprint: Dict[str, Any], state: RunState,
                    write_dir: Callable[[Path, Callable[[Path], Any]], Path] = write_atomically) -> Path:
    """Write the checkpoint to a temporary directory and rename it into place (`write_dir`)."""

    def write(tmp: Path) -> None:
        tmp.mkdir(parents=True)
        srsly.write_json(tmp / STATE_FILE, {"format": FORMAT, "fingerprint": fingerprint,
                                            "position": [state.position.epoch, state.position.batch]})
        blobs = {
            "weights": state.weights, "best_weights": state.best_weights, "optimizer": state.optimizer,
            "randomness": srsly.pickle_dumps(state.randomness),
            "epoch_randomness": srsly.pickle_dumps(state.epoch_randomness),
            "epoch_losses": state.epoch_losses, "extra": state.extra,
            # Here, not in the JSON: JSON would round the scores the best epoch is chosen by.
            "progress": srsly.pickle_dumps(state.progress),
        }
        (tmp / BLOBS_FILE).write_bytes(srsly.msgpack_dumps(blobs))

    return write_dir(path, write)


def load_checkpoint(path: Path, fingerprint: Dict[str, Any]) -> RunState:
    """The state saved at `path`; a clear error when there is none, or when it was written by a
    run with other data or settings."""
    recover(path)
    if not (path / STATE_FILE).is_file() or not (path / BLOBS_FILE).is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from; run once without --resume first")
    head = srsly.read_json(path / STATE_FILE)
    saved = head.get("fingerprint", {})
    changed = sorted(k for k in set(saved) | set(fingerprint) if saved.get(k) != fingerprint.get(k))
    if changed:
        what = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {fingerprint.get(k)!r}" for k in changed)
        raise CheckpointError(f"{path}: the checkpoint was written by a run with other data or settings "
                              f"({what}); resume with the same command, or start again without --resume")
    blobs = srsly.msgpack_loads((path / BLOBS_FILE).read_bytes())
    return RunState(
        position=Position(*head["position"]),
        weights=blobs["weights"],
        best_weights=blobs["best_weights"],
        optimizer=blobs["optimizer"],
        randomness=srsly.pickle_loads(blobs["randomness"]),
        epoch_randomness=srsly.pickle_loads(blobs["epoch_randomness"]),
        epoch_losses=blobs["epoch_losses"],
        progress=srsly.pickle_loads(blobs["progress"]),
        extra=blobs["extra"],
    )
