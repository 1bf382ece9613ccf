"""Shuffled minibatches in examples or words: a shuffle buffer for streams, size schedules."""
import random
from typing import Callable, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from spacy.training import Example
from spacy.training.batchers import minibatch_by_words
from spacy.util import compounding, minibatch

DEFAULT_BATCH_SIZE = (4.0, 32.0, 1.001)  # compounding start, stop, rate: the recipe's
DEFAULT_BUFFER_SIZE = 10000
DEFAULT_TOLERANCE = 0.2  # spaCy's batch_by_words default
UNITS = ("examples", "words")

T = TypeVar("T")
BatchSize = Union[int, Tuple[float, float, float], Iterable[float]]


def make_batches(
    items: Iterable[T],
    size: Iterable[float],
    rng: random.Random,
    buffer_size: int = 0,
    *,
    unit: str = "examples",
    tolerance: float = DEFAULT_TOLERANCE,
    discard_oversize: bool = False,
    shuffled: bool = False,
) -> Iterator[List[T]]:
    """Minibatches of the `size` schedule, drawn from a shuffle buffer of `buffer_size` items
    (0: all of them, a full shuffle), so a stream is shuffled without being held in memory.

    Args:
        items (Iterable): the examples (anything with a len() for unit="words").
        size (Iterable[float]): the size schedule, one size a batch; see `batch_sizes`.
        rng (random.Random): the shuffle's random source.
        buffer_size (int): items held for shuffling; 0 shuffles them all in memory.
        unit (str): "examples" counts items; "words" counts len(item) (an Example's tokens)
            the way spaCy's batch_by_words.v1 does, with `tolerance` and `discard_oversize`.
        tolerance (float): unit="words": how far past the size (a fraction of it) a batch may go.
        discard_oversize (bool): unit="words": drop an item longer than size plus tolerance,
            instead of making it a batch of its own.
        shuffled (bool): the items come shuffled already (see buffer_shuffle): batched in order.
    RETURNS (Iterator[List]): the batches.
    """
    check_unit(unit)
    if shuffled:
        shuffled_items: Iterable[T] = items
    elif buffer_size <= 0:
        pool = list(items)
        rng.shuffle(pool)
        shuffled_items = pool
    else:
        shuffled_items = buffer_shuffle(items, rng, buffer_size)
    if unit == "words":
        return iter(minibatch_by_words(shuffled_items, size=iter(size), tolerance=tolerance,  # type: ignore[arg-type]
                                       discard_oversize=discard_oversize))
    return minibatch(shuffled_items, size=iter(size))


def shuffled_minibatches(
    items: Iterable[T], size: Iterable[float], rng: random.Random, buffer_size: int = 0
) -> Iterator[List[T]]:
    """`make_batches` in examples (kept for callers of the earlier name)."""
    return make_batches(items, size, rng, buffer_size)


def check_unit(unit: str) -> None:
    """Raise a ValueError for a batch unit other than "examples" or "words"."""
    if unit not in UNITS:
        raise ValueError(f"batch unit {unit!r} is not one of {', '.join(map(repr, UNITS))}: "
                         "set unit = \"examples\" or unit = \"words\"")


def buffer_shuffle(items: Iterable[T], rng: random.Random, buffer_size: int) -> Iterator[T]:
    """The items, shuffled through a buffer of `buffer_size`: each read item takes the place of
    one drawn at random, which is yielded; the last buffer is shuffled whole."""
    buffer: List[T] = []
    for item in items:
        if len(buffer) < buffer_size:
            buffer.append(item)
            continue
        i = rng.randrange(buffer_size)
        yield buffer[i]
        buffer[i] = item
    rng.shuffle(buffer)
    yield from buffer


def batch_sizes(batch_size: BatchSize) -> Iterable[float]:
    """A fresh size schedule: an int repeats, (start, stop, rate) compounds, an iterable is used as it is."""
    if isinstance(batch_size, int):
        return iter(lambda: batch_size, None)
    if isinstance(batch_size, tuple):
        return compounding(*batch_size)
    return batch_size


def shuffled_batches_v1(
    size: Optional[Union[int, Iterable[float]]] = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    seed: int = 0,
    unit: str = "examples",
    tolerance: float = DEFAULT_TOLERANCE,
    discard_oversize: bool = False,
) -> Callable[[Iterable[Example]], Iterable[List[Example]]]:
    """Registered as spacy-ner-trainer.shuffled_batches.v1: compounding minibatches drawn from
    a shuffle buffer, so that streamed corpora (max_epochs = -1) are shuffled too.

    Args:
        size (Optional[Union[int, Iterable[float]]]): batch size schedule, in `unit`s, one
            schedule across epochs; default compounding 4 -> 32 examples, x1.001.
        buffer_size (int): examples held for shuffling; 0 shuffles the whole epoch in memory.
        seed (int): seed of the shuffle.
        unit (str): "examples", or "words" for batches of about `size` tokens, with
            spaCy's batch_by_words.v1 semantics.
        tolerance (float): unit="words": how far past `size` (a fraction of it) a batch may go.
        discard_oversize (bool): unit="words": drop an example longer than size plus
            tolerance instead of making it a batch of its own.
    RETURNS (Callable): the batcher, called by spaCy once an epoch.
    """
    check_unit(unit)
    if size is None and unit == "words":
        raise ValueError("unit = \"words\" needs a size in words, e.g. size = 2000 or a "
                         "[training.batcher.size] schedule such as compounding.v1")
    rng = random.Random(seed)
    sizes = batch_sizes(DEFAULT_BATCH_SIZE if size is None else size)

    def batcher(items: Iterable[Example]) -> Iterable[List[Example]]:
        return make_batches(items, sizes, rng, buffer_size, unit=unit, tolerance=tolerance,
                            discard_oversize=discard_oversize)

    return batcher
