"""Training on a GPU: the pipeline moved to the device, batches in words, a warmed-up learn rate."""
import itertools
from typing import Generator, Iterator, Optional

from spacy.language import Language
from .errors import UsageError
from thinc.api import Optimizer, constant, get_current_ops, require_gpu, warmup_linear

# train()'s defaults when gpu_id >= 0. A GPU runs a batch of 2,000 words in about the time it
# runs one of 200 (the parser's steps, not its width, set the pace), so batches are large and
# measured in words; the learn rate grows with the batch and warms up over the first updates,
# as in spaCy's transformer configs. bench/bench_gpu.py measures them against the CPU defaults.
GPU_BATCH_SIZE = 2000  # words a batch
GPU_BATCH_UNIT = "words"
GPU_LEARN_RATE = 0.002
GPU_WARMUP_STEPS = 100  # updates
# A transformer learns at a much lower rate (spaCy's transformer configs use 5e-5).
TRANSFORMER_LEARN_RATE = 5e-5
TRANSFORMER_WARMUP_STEPS = 250


def require(gpu_id: int) -> None:
    """spacy.require_gpu, with a UsageError (one line, exit 2 in the CLI) when there is no GPU
    or no CuPy."""
    try:
        require_gpu(gpu_id)
    except ValueError as err:
        raise UsageError(f"--gpu-id {gpu_id}: {err}; run on the CPU with --gpu-id -1, or install "
                         "CuPy for your CUDA version") from None


def use_gpu(nlp: Language, gpu_id: int) -> None:
    """Make GPU `gpu_id` current (spacy.require_gpu) and move `nlp`'s components and vectors
    to it: components built before the switch keep their CPU arrays otherwise, and a batch
    then mixes devices.

    Args:
        nlp (Language): the pipeline, changed in place.
        gpu_id (int): the GPU.
    """
    require(gpu_id)
    for _, component in nlp.components:
        model = getattr(component, "model", None)
        if model is not None and model is not True:
            model.to_gpu(gpu_id)
    nlp.vocab.vectors.to_ops(get_current_ops())


def learn_rate_schedule(
    learn_rate: float = GPU_LEARN_RATE,
    warmup_steps: int = GPU_WARMUP_STEPS,
    total_steps: Optional[int] = None,
) -> Generator[float, None, None]:
    """The learn rate of each update: up from 0 over `warmup_steps` (thinc's warmup_linear),
    then down to 0 at `total_steps`, or constant when the number of updates is not known
    (a stream, early stopping).

    Args:
        learn_rate (float): the rate reached after the warm-up.
        warmup_steps (int): updates to reach it.
        total_steps (Optional[int]): updates in the whole run, for a linear decay after the warm-up.
    RETURNS (Generator[float, None, None]): one rate an update, without end.
    """
    if total_steps is not None:
        yield from warmup_linear(learn_rate, warmup_steps, total_steps)
        return
    yield from itertools.islice(warmup_linear(learn_rate, warmup_steps, warmup_steps), warmup_steps)
    yield from constant(learn_rate)


def warm_up(optimizer: Optimizer, schedule: Iterator[float], steps_done: int = 0) -> None:
    """Make `optimizer` take its learn rate from `schedule`, one value an update (the training
    loop calls optimizer.step_schedules() after each); `steps_done` skips the updates a resumed
    run has already made.

    Args:
        optimizer (Optimizer): thinc's optimizer, changed in place.
        schedule (Iterator[float]): e.g. learn_rate_schedule().
        steps_done (int): updates already made.
    """
    for _ in range(steps_done):
        next(schedule)
    # thinc annotates schedules with its own (pydantic) Generator class; step_schedules() only calls next().
    optimizer.schedules["learn_rate"] = schedule  # type: ignore[assignment]
    optimizer.learn_rate = next(schedule)
