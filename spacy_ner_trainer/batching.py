"""Shuffled compounding minibatches: a shuffle buffer for streams, size schedules."""
import random
from typing import Callable, Iterable, Iterator, List, Optional, Tuple, TypeVar, Union

from spacy.training import Example
from spacy.util import compounding, minibatch

DEFAULT_BATCH_SIZE = (4.0, 32.0, 1.001)  # compounding start, stop, rate: the recipe's
DEFAULT_BUFFER_SIZE = 10000

T = TypeVar("T")
BatchSize = Union[int, Tuple[float, float, float], Iterable[float]]


def shuffled_minibatches(
    items: Iterable[T], size: Iterable[float], rng: random.Random, buffer_size: int = 0
) -> Iterator[List[T]]:
    """Minibatches of the `size` schedule, drawn from a shuffle buffer of `buffer_size` items
    (0: all of them, a full shuffle), so a stream is shuffled without being held in memory."""
    if buffer_size <= 0:
        pool = list(items)
        rng.shuffle(pool)
        return minibatch(pool, size=iter(size))
    return minibatch(_buffer_shuffle(items, rng, buffer_size), size=iter(size))


def _buffer_shuffle(items: Iterable[T], rng: random.Random, buffer_size: int) -> Iterator[T]:
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
    """A fresh size schedule: an int repeats, (start, stop, rate) compounds."""
    if isinstance(batch_size, int):
        return iter(lambda: batch_size, None)
    if isinstance(batch_size, tuple):
        return compounding(*batch_size)
    return batch_size


def shuffled_batches_v1(
    size: Optional[Union[int, Iterable[float]]] = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    seed: int = 0,
) -> Callable[[Iterable[Example]], Iterable[List[Example]]]:
    """Registered as spacy-ner-trainer.shuffled_batches.v1: compounding minibatches drawn from
    a shuffle buffer, so that streamed corpora (max_epochs = -1) are shuffled too.

    Args:
        size (Optional[Union[int, Iterable[float]]]): batch size schedule, in examples;
            default compounding 4 -> 32, x1.001.
        buffer_size (int): examples held for shuffling; 0 shuffles the whole epoch in memory.
        seed (int): seed of the shuffle.
    RETURNS (Callable): the batcher, called by spaCy once an epoch.
    """
    rng = random.Random(seed)
    sizes = batch_sizes(DEFAULT_BATCH_SIZE if size is None else size)

    def batcher(items: Iterable[Example]) -> Iterable[List[Example]]:
        return shuffled_minibatches(items, sizes, rng, buffer_size)

    return batcher
