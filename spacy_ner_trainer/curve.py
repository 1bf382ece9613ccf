"""The learning curve: train on growing shares of the data and read whether more data helps."""
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from .errors import UsageError
from .loop import train
from .readers import TrainingData, to_examples
from .workflow import load_pipeline

DEFAULT_FRACTIONS = (0.25, 0.5, 0.75, 1.0)


@dataclass
class CurveRow:
    """One run: the share of the training data, its size, the dev F of its best epoch, and
    the change from the run before (None for the first)."""

    fraction: float
    n_examples: int
    f: float
    delta: Optional[float] = None

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


@dataclass
class CurveResult:
    """What `train_curve` found: a row per run and what the last step says."""

    rows: List[CurveRow] = field(default_factory=list)
    improved: bool = False  # dev F rose in the last step
    verdict: str = ""


def read_curve(rows: Sequence[CurveRow]) -> CurveResult:
    """The reading Prodigy's train-curve gives: a dev F that still rises from the second-last
    run to the last suggests that more data of the same kind will help; a flat or falling last
    step suggests it will not help much.

    Args:
        rows (Sequence[CurveRow]): the runs, in order of growing data.
    RETURNS (CurveResult): the rows, whether the last step improved, and the verdict in words.
    """
    rows = list(rows)
    if len(rows) < 2:
        return CurveResult(rows, False, "One run only: no step to read, so nothing to say about more data")
    last, before = rows[-1], rows[-2]
    step = f"from {before.fraction:.0%} to {last.fraction:.0%} of the data, dev F {last.f - before.f:+.3f}"
    if last.f > before.f:
        return CurveResult(rows, True, f"Dev F still improved in the last step ({step}): more annotated data "
                                       "of the same kind is likely to improve the model")
    return CurveResult(rows, False, f"Dev F did not improve in the last step ({step}): more data of the same "
                                    "kind is unlikely to help much; look at the annotations, the labels or the "
                                    "settings instead")


def train_curve(
    train_data: TrainingData,
    dev_data: TrainingData,
    *,
    model: Optional[Union[str, Path]] = None,
    lang: str = "en",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    on_run: Optional[Callable[[CurveRow], None]] = None,
    **train_kwargs: Any,
) -> CurveResult:
    """Train a fresh pipeline on each share of the training data (prefixes of one seeded
    shuffle) with the same settings and seed, and score each on the dev data.

    Args:
        train_data: as for `train`; read once, into memory.
        dev_data: as for `train`; each run's dev F is that of its best epoch.
        model (Optional[Union[str, Path]]): the base pipeline, loaded afresh for every run: an
            installed package name, a path, or None for a blank `lang` pipeline.
        lang (str): the language of a blank pipeline.
        fractions (Sequence[float]): the shares of the training data, growing, each in (0, 1].
        seed (int): seeds the shuffle and every run.
        on_run (Optional[Callable[[CurveRow], None]]): called with each row as its run ends.
        **train_kwargs: passed to `train` (n_iter, dropout, patience, ...).
    RETURNS (CurveResult): the rows and the reading of the last step.
    """
    fractions = [float(f) for f in fractions]
    if not fractions or any(not 0 < f <= 1 for f in fractions) or fractions != sorted(set(fractions)):
        raise ValueError(f"fractions {fractions} must be growing shares of the data, each above 0 and up to 1")
    nlp = load_pipeline(model, lang)
    examples = list(to_examples(nlp, train_data))
    dev = list(to_examples(nlp, dev_data))
    random.Random(seed).shuffle(examples)
    rows: List[CurveRow] = []
    for fraction in fractions:
        part = examples[:max(1, int(fraction * len(examples) + 0.5))]
        if not any(eg.reference.ents for eg in part):
            raise UsageError(f"{fraction:.0%} of the training data ({len(part)} of {len(examples)} examples) holds "
                             "no entities: use more data")
        result = train(nlp if not rows else load_pipeline(model, lang), part, dev_data=dev, seed=seed,
                       **train_kwargs)
        f = result.best_score or 0.0
        rows.append(CurveRow(fraction, len(part), f, f - rows[-1].f if rows else None))
        if on_run is not None:
            on_run(rows[-1])
    return read_curve(rows)
