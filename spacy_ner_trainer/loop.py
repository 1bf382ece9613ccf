"""The recipe's training loop: `ner` only, shuffled compounding minibatches through `nlp.update`."""
import random
import time
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from spacy.language import Language
from spacy.training import Example
from spacy.util import fix_random_seed
from tqdm import tqdm

from .errors import logger
from .labels import collect_labels, move_table, warn_low_counts
from .readers import TrainingData, to_examples
from .rehearse import Rehearsal, entity_words, interleave, read_texts
from .batching import DEFAULT_BATCH_SIZE, DEFAULT_BUFFER_SIZE, BatchSize, batch_sizes, shuffled_batches_v1, shuffled_minibatches  # noqa: F401
from .evaluate import evaluate
from .pipeline import prepare_ner

# Chosen with bench/bench_defaults.py (README, "Defaults"): dropout 0.2 learns as well as 0.1-0.3
# and twice as fast as 0.5; 30 epochs cover the recipe's two sentences (18-22 epochs at 0.2) with
# a margin, and the corpus curves level off by epochs 10-15.
DEFAULT_N_ITER = 30
DEFAULT_DROPOUT = 0.2


@dataclass
class TrainResult:
    """What `train` did: losses and dev scores per epoch, the labels, the throughput."""

    losses: List[float] = field(default_factory=list)
    scores: List[Dict[str, Any]] = field(default_factory=list)
    labels: Dict[str, int] = field(default_factory=dict)
    n_words: int = 0
    seconds: float = 0.0
    resumed: bool = False
    # The original pipeline's predictions on held-back text, for verify(retention=...).
    retention_examples: List[Example] = field(default_factory=list, repr=False)

    @property
    def words_per_second(self) -> float:
        return self.n_words / self.seconds if self.seconds else 0.0

    def to_dict(self) -> Dict[str, Any]:
        return {
            "losses": self.losses,
            "scores": self.scores,
            "labels": self.labels,
            "n_words": self.n_words,
            "seconds": self.seconds,
            "words_per_second": self.words_per_second,
            "resumed": self.resumed,
        }


def train(
    nlp: Language,
    train_data: TrainingData,
    *,
    dev_data: Optional[TrainingData] = None,
    n_iter: int = DEFAULT_N_ITER,
    dropout: float = DEFAULT_DROPOUT,
    batch_size: BatchSize = DEFAULT_BATCH_SIZE,
    learn_rate: Optional[float] = None,
    seed: int = 0,
    buffer_size: int = 0,
    on_epoch: Optional[Callable[[int, float, Optional[Dict[str, Any]]], None]] = None,
    progress: bool = False,
    rehearse: bool = False,
    rehearse_data: Optional[Union[str, Path, Sequence[str]]] = None,
    rehearse_ratio: float = 1.0,
) -> TrainResult:
    """Train `nlp`'s `ner` (added if missing) and nothing else, the recipe's way.

    Args:
        nlp (Language): a blank or trained pipeline; changed in place.
        train_data: Examples, seed tuples (text, {"entities": [...]}), a corpus callable such
            as NerCorpus.v1 returns, or a path NerCorpus reads.
        dev_data: the same kinds; scored after every epoch.
        n_iter (int): epochs.
        dropout (float): dropout rate for nlp.update.
        batch_size: an int, (start, stop, rate) for a compounding schedule restarted every
            epoch, or an iterable of sizes.
        learn_rate (Optional[float]): the optimizer's learning rate; None keeps the
            pipeline's (spaCy's Adam default, 0.001). A trained `ner` taught new labels keeps
            more of what it knew at a lower rate (bench/bench_forgetting.py).
        seed (int): seeds the shuffle and the weights: the same data and seed give the same model.
        buffer_size (int): shuffle buffer for corpora too large for memory; 0 holds each epoch
            in memory and shuffles it whole.
        on_epoch (Optional[Callable]): called as on_epoch(epoch, loss, dev_scores) after each epoch.
        progress (bool): show a progress bar over each epoch's examples.
        rehearse (bool): keep the labels the pipeline's `ner` knows and the new data lacks:
            before training, the pipeline's own predictions for them fill in the gold of the
            training texts wherever they overlap no gold span.
        rehearse_data: raw texts (a path of text lines or JSONL with "text", or strings) that
            the pipeline annotates before training; mixed into every epoch as silver examples.
        rehearse_ratio (float): silver examples per training example in every epoch.
    RETURNS (TrainResult): losses and dev scores per epoch, labels, words/s.
    """
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout {dropout} is not a rate: use a value from 0 up to (not including) 1")
    if learn_rate is not None and learn_rate < 0:
        raise ValueError(f"learn rate {learn_rate} is negative: use 0 or more (spaCy's default is 0.001)")
    if buffer_size > 0 and not isinstance(train_data, (str, Path, list, tuple)) and not callable(train_data):
        raise ValueError("streamed training data is read once an epoch: pass a path, a list or a "
                         "corpus callable such as NerCorpus(path), not a one-shot iterator")
    fix_random_seed(seed)
    rng = random.Random(seed)
    if buffer_size <= 0:
        # Each epoch is shuffled whole, in memory: read and align the data once.
        train_data = list(to_examples(nlp, train_data))
    examples = lambda: to_examples(nlp, train_data)  # noqa: E731
    dev = list(to_examples(nlp, dev_data)) if dev_data is not None else None
    labels = collect_labels(examples())
    if not labels:
        raise ValueError("the training data holds no entities; check the data and the labels filter")
    warn_low_counts(labels, "training data")
    # What the pipeline knows before training: rehearsed, and held back to measure retention.
    original = Rehearsal(nlp, labels)
    retention_texts: List[str] = [eg.reference.text for eg in dev] if dev else []
    silver: List[Example] = []
    if rehearse and original.old_labels:
        logger.info("rehearsing %s while training %s", sorted(original.old_labels), sorted(labels))
        if buffer_size <= 0:
            train_data = list(original.fill(train_data))
            unsure = entity_words(train_data, labels)
        else:
            # Streamed: still predict every text now, before the first update changes the
            # model; the same pass collects the new labels' words.
            unsure = entity_words(original.fill(to_examples(nlp, train_data)), labels)
            examples = lambda: original.fill(to_examples(nlp, train_data))  # noqa: E731
        texts = _texts(rehearse_data)
        if texts and not retention_texts:
            held = max(1, len(texts) // 10)
            texts, retention_texts = texts[:-held], texts[-held:]
        silver = original.silver(texts, unsure) if texts else []
    if original.old_labels and retention_texts:
        retention_examples = original.silver(retention_texts)
    ner, resumed, trained = prepare_ner(nlp)
    result = TrainResult(labels=labels, resumed=resumed)
    if original.old_labels and retention_texts:
        result.retention_examples = retention_examples
    with nlp.select_pipes(enable=trained):
        sample = lambda: islice(examples(), 100)  # noqa: E731
        if resumed:
            for label in labels:
                ner.add_label(label)
            optimizer = nlp.resume_training()
        elif len(trained) > 1:
            # A new pipeline whose ner listens to an untrained tok2vec: both learn together.
            for label in labels:
                ner.add_label(label)
            optimizer = nlp.initialize(sample)
        else:
            ner.initialize(sample, nlp=nlp, labels=move_table(labels))
            optimizer = nlp.create_optimizer()
        if learn_rate is not None:
            optimizer.learn_rate = learn_rate
        for epoch in range(n_iter):
            losses: Dict[str, float] = {}
            start = time.perf_counter()
            if silver:
                # From the second epoch, what the model has learned of the new labels is no
                # longer taught as "O" in the silver examples.
                epoch_silver = original.with_student(silver, nlp) if epoch else silver
                epoch_examples = interleave(examples(), epoch_silver, rehearse_ratio, rng)
            else:
                epoch_examples = examples()
            batches = shuffled_minibatches(epoch_examples, batch_sizes(batch_size), rng, buffer_size)
            bar = tqdm(total=len(train_data) if isinstance(train_data, list) else None, unit=" examples",
                       desc=f"epoch {epoch + 1}", leave=False, disable=not progress)
            for batch in batches:
                nlp.update(batch, drop=dropout, sgd=optimizer, losses=losses)
                result.n_words += sum(len(eg.predicted) for eg in batch)
                bar.update(len(batch))
            bar.close()
            result.seconds += time.perf_counter() - start
            result.losses.append(float(losses.get("ner", 0.0)))
            scores = evaluate(nlp, dev).scores if dev else None
            if scores is not None:
                result.scores.append(scores)
            if on_epoch is not None:
                on_epoch(epoch, result.losses[-1], scores)
    return result


def _texts(data: Optional[Union[str, Path, Sequence[str]]]) -> List[str]:
    if data is None:
        return []
    return list(read_texts(data)) if isinstance(data, (str, Path)) else list(data)
