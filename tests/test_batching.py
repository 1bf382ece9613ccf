"""shuffled_batches.v1 and make_batches in words: spaCy's batch_by_words.v1 semantics (size
schedule, tolerance, discard_oversize) on shuffled examples, set from a config as users write it;
in examples, the batches they always were; and the GPU learn-rate warm-up."""
import random
from typing import List

import pytest
from spacy.training import Example
from spacy.util import registry
from thinc.api import Adam, Config

from spacy_ner_trainer.batching import batch_sizes, make_batches, shuffled_batches_v1, shuffled_minibatches
from spacy_ner_trainer.gpu import GPU_LEARN_RATE, GPU_WARMUP_STEPS, learn_rate_schedule, warm_up

WNUT_DEV = "wnut17/emerging.dev.conll"


def batcher_from(config: str):
    """The batcher a [training.batcher] block resolves to, as spaCy resolves it."""
    return registry.resolve(Config().from_str(config))["training"]["batcher"]


def words(batch: List[Example]) -> int:
    return sum(len(eg) for eg in batch)


def texts(batches) -> List[str]:
    return [eg.reference.text for batch in batches for eg in batch]


@pytest.fixture(scope="module")
def wnut_dev(corpus_path):
    import spacy

    from spacy_ner_trainer import NerCorpus

    return list(NerCorpus(corpus_path(WNUT_DEV))(spacy.blank("en")))


OURS = """
[training]

[training.batcher]
@batchers = "spacy-ner-trainer.shuffled_batches.v1"
unit = "words"
size = {size}
tolerance = 0.2
discard_oversize = {discard}
buffer_size = 0
seed = 3
"""
SPACYS = """
[training]

[training.batcher]
@batchers = "spacy.batch_by_words.v1"
size = {size}
tolerance = 0.2
discard_oversize = {discard}
"""
SCHEDULE = """
[training.batcher.size]
@schedules = "compounding.v1"
start = 20
stop = 400
compound = 1.2
"""


@pytest.mark.parametrize("discard", ["false", "true"])
def test_words_unit_batches_as_spacy_batch_by_words_does(wnut_dev, discard):
    ours = batcher_from(OURS.format(size=60, discard=discard))
    spacys = batcher_from(SPACYS.format(size=60, discard=discard))
    shuffled = list(wnut_dev)
    random.Random(3).shuffle(shuffled)  # the order buffer_size = 0 and seed = 3 give
    batches = list(ours(wnut_dev))
    assert [[eg.reference.text for eg in b] for b in batches] == [[eg.reference.text for eg in b]
                                                                  for b in spacys(shuffled)]
    assert len(batches) > 100
    oversize = [eg for eg in wnut_dev if len(eg) > 72]
    assert oversize, "WNUT-17 dev has tweets longer than 60 words plus 20%"
    for batch in batches:
        assert words(batch) <= 72 or len(batch) == 1
    if discard == "true":
        assert sorted(texts(batches)) == sorted(eg.reference.text for eg in wnut_dev if len(eg) <= 72)
    else:
        assert sorted(texts(batches)) == sorted(eg.reference.text for eg in wnut_dev)
        assert sum(1 for b in batches if len(b) == 1 and words(b) > 72) == len(oversize)


def test_words_schedule_compounds_across_epochs_as_spacys(wnut_dev):
    ours = batcher_from(OURS.format(size="null", discard="false").replace("size = null\n", "") + SCHEDULE)
    spacys = batcher_from(SPACYS.format(size="null", discard="false").replace("size = null\n", "") + SCHEDULE)
    rng = random.Random(3)
    for _ in range(2):  # one schedule across epochs, as spaCy's batchers keep it
        shuffled = list(wnut_dev)
        rng.shuffle(shuffled)
        mine = list(ours(wnut_dev))
        assert [len(b) for b in mine] == [len(b) for b in spacys(shuffled)]
    assert words(mine[-2]) > 300  # the schedule reached its stop


def test_words_from_a_stream_through_the_buffer_keeps_every_example(wnut_dev):
    batches = list(make_batches(iter(wnut_dev), batch_sizes(100), random.Random(0), buffer_size=50, unit="words"))
    assert sorted(texts(batches)) == sorted(eg.reference.text for eg in wnut_dev)
    assert texts(batches) != [eg.reference.text for eg in wnut_dev]  # shuffled
    assert all(words(b) <= 120 or len(b) == 1 for b in batches)
    # Full batches: all but the last reach the size or take an example that crosses it.
    assert sum(words(b) for b in batches[:-1]) / (len(batches) - 1) > 80


def test_examples_unit_is_the_default_and_unchanged():
    items = list(range(200))
    default = list(shuffled_batches_v1(buffer_size=0, seed=5)(items))
    explicit = batcher_from("""
[training]

[training.batcher]
@batchers = "spacy-ner-trainer.shuffled_batches.v1"
unit = "examples"
buffer_size = 0
seed = 5
""")
    assert list(explicit(items)) == default
    assert [len(b) for b in default[:3]] == [4, 4, 4]
    rng = random.Random(5)
    assert list(shuffled_minibatches(items, batch_sizes((4.0, 32.0, 1.001)), rng)) == default
    assert len(next(make_batches(items, batch_sizes(7), random.Random(1), unit="examples"))) == 7


def test_bad_unit_and_words_without_a_size_are_refused():
    with pytest.raises(ValueError, match=r"batch unit 'tokens' is not one of 'examples', 'words'"):
        batcher_from(OURS.format(size=60, discard="false").replace('"words"', '"tokens"'))
    with pytest.raises(ValueError, match=r"batch unit 'sentences'"):
        make_batches([1, 2], batch_sizes(1), random.Random(0), unit="sentences")
    with pytest.raises(ValueError, match=r"needs a size in words"):
        shuffled_batches_v1(unit="words")


def test_gpu_learn_rate_warms_up_then_holds():
    schedule = learn_rate_schedule(0.002, 4)
    rates = [next(schedule) for _ in range(7)]
    assert rates == pytest.approx([0.0, 0.0005, 0.001, 0.0015, 0.002, 0.002, 0.002])
    decaying = learn_rate_schedule(0.002, 2, total_steps=6)
    assert [next(decaying) for _ in range(7)] == pytest.approx([0.0, 0.001, 0.002, 0.0015, 0.001, 0.0005, 0.0])
    assert next(learn_rate_schedule()) == 0.0
    schedule = learn_rate_schedule()
    for _ in range(GPU_WARMUP_STEPS):
        next(schedule)
    assert next(schedule) == GPU_LEARN_RATE


def test_warm_up_drives_the_optimizer_and_resumes_where_it_was():
    optimizer = Adam(0.001)
    warm_up(optimizer, learn_rate_schedule(0.002, 4))
    seen = [optimizer.learn_rate]
    for _ in range(5):
        optimizer.step_schedules()  # what the training loop calls after each update
        seen.append(optimizer.learn_rate)
    assert seen == pytest.approx([0.0, 0.0005, 0.001, 0.0015, 0.002, 0.002])
    resumed = Adam(0.001)
    warm_up(resumed, learn_rate_schedule(0.002, 4), steps_done=2)
    assert resumed.learn_rate == pytest.approx(0.001)
