"""The recipe's training loop: `ner` only, shuffled compounding minibatches through `nlp.update`,
the best epoch kept, checkpoints that resume exactly."""
import hashlib
import math
import random
import signal
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import fix_random_seed, registry
from thinc.api import Optimizer
from tqdm import tqdm

from .batching import DEFAULT_BATCH_SIZE, BatchSize, batch_sizes, buffer_shuffle, check_unit, make_batches
from .checkpoint import (Position, RunState, component_bytes, load_checkpoint, load_component_bytes,
                         optimizer_state, random_states, restore_optimizer, save_checkpoint, set_random_states)
from .errors import UsageError, logger
from .evaluate import Evaluation, evaluate
from .gpu import GPU_BATCH_SIZE, GPU_BATCH_UNIT, GPU_LEARN_RATE, learn_rate_schedule, require, use_gpu, warm_up
from .labels import check_label_filter, move_table, warn_low_counts
from .confident import add_confident_pass
from .pipeline import (CONFIDENT_NER, NEVER, NEW_NER, barred, component, follow_labels, free_name, ner_labels,
                       prepare_ner)
from .readers import NerCorpus, TrainingData, same_tokens, to_examples
from .rehearse import DEFAULT_DISTILL_RATIO, DEFAULT_RATIO, RawData, Rehearsal, RehearsalPlan, plan_rehearsal

# Chosen with bench/bench_defaults.py (README, "Defaults"): 30 epochs cover the recipe's two
# sentences (15-17 epochs at dropout 0.1, 18-22 at 0.2) with a margin, and the corpus curves
# level off by epochs 10-15. Dropout 0.1 is spaCy's own, one of the `spacy train` settings
# measured together with bench/bench_best.py (README, "Benchmarks"); on WNUT-17 a screen found
# 18.3 test F at 0.1 against 13.0 at 0.2 (3 seeds, the weights without their averages).
DEFAULT_N_ITER = 30
DEFAULT_DROPOUT = 0.1
# A trained ner is fine-tuned with the settings bench/bench_forgetting.py measured: dropout 0.2
# and the recipe's batches of 4 -> 32 examples.
FINE_TUNE_DROPOUT = 0.2
# Batches in words were measured on corpora of 3,394-5,424 sentences. A few hand-labelled
# sentences keep the recipe's 4 -> 32 examples: 100 words would take them all in one batch,
# one update an epoch.
WORDS_MIN_EXAMPLES = 1000
# Chosen with bench/bench_best.py (README, "Benchmarks"): a new ner keeps the optimizer's moving
# averages of its weights (thinc's use_averages) and, with dev data, every epoch scores both the
# averages and the weights themselves and keeps the better: the averages won every epoch on
# BC5CDR and NCBI-disease, the weights on two of three WNUT-17 seeds (+1.5 and +3.3 test F).
DEFAULT_AVERAGE = True
# Epochs without a dev improvement before stopping; 0 never stops early (bench_defaults.py).
DEFAULT_PATIENCE = 5
# Batches in words on the CPU: the compounding schedule of spaCy's `init config` batcher.
DEFAULT_WORDS_BATCH_SIZE = (100.0, 1000.0, 1.001)
# A trained ner taught new labels keeps more of what it knew at a lower rate than Adam's
# 0.001 (bench/bench_forgetting.py). The copy of a kept ner has nothing of its own to keep:
# it learns at the pipeline's rate, 3.9-4.9 points of new-label F above 3e-4 there.
FINE_TUNE_LEARN_RATE = 3e-4
# Chosen with bench/bench_forgetting.py: what the copy of a kept ner needs to start a new-label entity.
NEW_LABEL_MARGIN = 1.0

OnEpoch = Callable[[Dict[str, Any]], None]


@dataclass
class TrainResult:
    """What `train` did: losses and dev scores per epoch, the best epoch, labels, throughput."""

    losses: List[float] = field(default_factory=list)
    scores: List[Dict[str, Any]] = field(default_factory=list)
    labels: Dict[str, int] = field(default_factory=dict)
    n_words: int = 0
    seconds: float = 0.0
    resumed: bool = False
    # One row an epoch: epoch (1-based), loss, dev P/R/F and per label, words, seconds, words/s.
    epochs: List[Dict[str, Any]] = field(default_factory=list)
    best_epoch: Optional[int] = None  # 1-based; None without dev data
    best_score: Optional[float] = None  # dev ents_f of that epoch
    stopped_early: bool = False
    rehearsed: List[str] = field(default_factory=list)  # the old labels rehearsed
    kept: List[str] = field(default_factory=list)  # the old labels of the ner left unchanged
    trained: str = "ner"  # the ner component trained: "ner", or its copy (keep_original)
    confident: Optional[str] = None  # the kept original's confident pass, run first (keep_original)
    confident_margin: Optional[float] = None  # its margin (given, or calibrated on the training data)
    learn_rate: Optional[float] = None  # the trained ner's rate (after a GPU warm-up, where there is one)
    dropout: Optional[float] = None  # the dropout rate used
    batch_unit: Optional[str] = None  # what the batch sizes counted: "examples" or "words"
    # The original pipeline's predictions on held-back text, for verify(retention=...).
    retention_examples: List[Example] = field(default_factory=list, repr=False)
    # Trained components' bytes at the last epoch (the pipeline holds the best one's).
    last_weights: Dict[str, bytes] = field(default_factory=dict, repr=False)
    # The best epoch's whole evaluation on the dev data, which the saved model-best repeats
    # exactly; None without dev data or when a resumed run found its best epoch before.
    best_evaluation: Optional[Evaluation] = field(default=None, repr=False)

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
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "stopped_early": self.stopped_early,
            "rehearsed": self.rehearsed,
            "kept": self.kept,
            "trained": self.trained,
            "confident": self.confident,
            "confident_margin": self.confident_margin,
            "learn_rate": self.learn_rate,
            "dropout": self.dropout,
            "batch_unit": self.batch_unit,
        }


_PROGRESS = ("losses", "scores", "n_words", "seconds", "epochs", "best_epoch", "best_score")


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM stopped training after a batch; the checkpoint holds where it stopped.

    Attributes:
        signum (int): the signal.
        checkpoint (Path): the checkpoint directory written.
        result (TrainResult): what the run had done.
    """

    def __init__(self, signum: int, checkpoint: Path, result: TrainResult):
        self.signum = signum
        self.checkpoint = checkpoint
        self.result = result
        self.exit_code = 128 + signum
        super().__init__(f"{signal.Signals(signum).name}: stopped after a batch; checkpoint saved to {checkpoint}")


@dataclass
class _Data:
    """One epoch's gold examples (fresh each call), the dev examples, labels, and digests."""

    examples: Callable[[], Iterable[Example]]
    in_memory: bool
    size: int
    dev: Optional[List[Example]]
    labels: Dict[str, int]
    digest: str
    dev_digest: str
    # A streamed NerCorpus: one epoch's examples, its records shuffled through the buffer
    # with the given random source (far lighter to buffer than Examples).
    stream: Optional[Callable[[random.Random], Iterable[Example]]] = None


def train(
    nlp: Language,
    train_data: TrainingData,
    *,
    dev_data: Optional[TrainingData] = None,
    n_iter: int = DEFAULT_N_ITER,
    dropout: Optional[float] = None,
    batch_size: Optional[BatchSize] = None,
    batch_unit: Optional[str] = None,
    learn_rate: Optional[float] = None,
    average: Optional[bool] = None,
    seed: int = 0,
    buffer_size: int = 0,
    patience: int = DEFAULT_PATIENCE,
    checkpoint: Optional[Union[str, Path]] = None,
    resume: bool = False,
    gpu_id: int = -1,
    on_epoch: Optional[OnEpoch] = None,
    progress: bool = False,
    keep_original: Optional[bool] = None,
    new_label_margin: float = NEW_LABEL_MARGIN,
    original_margin: Optional[float] = None,
    rehearse: Optional[bool] = None,
    rehearse_data: Optional[RawData] = None,
    rehearse_ratio: float = DEFAULT_RATIO,
    rehearse_distill: float = DEFAULT_DISTILL_RATIO,
) -> TrainResult:
    """Train `nlp`'s `ner` (added if missing) and nothing else, the recipe's way.

    Args:
        nlp (Language): a blank or trained pipeline; changed in place. With dev data it ends
            holding the best epoch's weights (by dev ents_f), else the last epoch's.
        train_data: Examples, seed tuples (text, {"entities": [...]}), a corpus callable such
            as NerCorpus.v1 returns, or a path NerCorpus reads.
        dev_data: the same kinds; scored after every epoch.
        n_iter (int): epochs at most.
        dropout (Optional[float]): dropout rate for nlp.update; None: DEFAULT_DROPOUT for a new
            ner, FINE_TUNE_DROPOUT for a trained one.
        batch_size: an int, (start, stop, rate) for a compounding schedule restarted every
            epoch, or an iterable of sizes; None: in words, DEFAULT_WORDS_BATCH_SIZE (spaCy's
            100 -> 1,000) on the CPU and GPU_BATCH_SIZE on a GPU; in examples, the recipe's
            compounding 4 -> 32.
        batch_unit (Optional[str]): "examples" or "words" (spaCy's batch_by_words); None: words
            on a GPU, and on the CPU for a new ner with at least WORDS_MIN_EXAMPLES training
            examples and no batch_size; else examples.
        learn_rate (Optional[float]): the optimizer's learning rate; None keeps the pipeline's
            (Adam's 0.001) for a new ner and for the copy of a kept one, and uses
            FINE_TUNE_LEARN_RATE for a trained ner fine-tuned itself; on a GPU it is warmed up
            (gpu.learn_rate_schedule) to GPU_LEARN_RATE.
        average (Optional[bool]): True: keep moving averages of the weights (thinc's
            use_averages) and score and save those; False: the weights themselves. None: for a
            new ner, keep the averages (DEFAULT_AVERAGE) and, with dev data, score both every
            epoch and keep the better (the epoch's row says which: "averaged"); for a trained
            ner, the weights (fine-tuning was measured without averages).
        seed (int): seeds the shuffle and the weights: the same data and seed give the same model.
        buffer_size (int): shuffle buffer for corpora too large for memory; 0 holds each epoch
            in memory and shuffles it whole.
        patience (int): stop after this many epochs without a dev improvement; 0 never stops early.
        checkpoint (Optional[Union[str, Path]]): a directory to save a checkpoint to after every
            epoch, and after the current batch on SIGINT or SIGTERM (then TrainingInterrupted
            is raised).
        resume (bool): continue from `checkpoint`; the run ends with exactly the model an
            uninterrupted run ends with.
        gpu_id (int): GPU to train on, or -1 for the CPU.
        on_epoch (Optional[Callable[[Dict[str, Any]], None]]): called with each epoch's row
            (see TrainResult.epochs) after the epoch.
        progress (bool): show a progress bar over each epoch's examples.
        keep_original (Optional[bool]): leave the pipeline's trained `ner` unchanged and train
            a copy of it, added before it, on the data (pipeline.copy_ner): the copy's entities
            come first and the original finds what it always found around them. None
            (default): whenever the `ner` knows labels the data lacks and `rehearse` is None.
        new_label_margin (float): with the original kept: the copy starts an entity of a
            label the original never learned only where that move wins by this margin
            (pipeline.raise_bar, applied to the saved weights after training), so that text
            unlike the training data keeps more of the original's entities. The copy never
            starts an entity of a label only the original knows.
        original_margin (Optional[float]): with the original kept: a second copy of it,
            CONFIDENT_NER, runs before the one that learns and sets the original's entities
            whose start wins by this margin (confident.confident_first); the learning copy and
            the original take the rest. None (default): calibrated on the training data, the
            smallest margin at which those entities overlap at most CONFIDENT_OVERLAP of its
            entities (confident.calibrate); math.inf: no such pass.
        rehearse (Optional[bool]): train the `ner` itself and rehearse the labels it knows and
            the data lacks (see rehearse.py); None rehearses whenever there are such labels and
            the original is not kept.
        rehearse_data: raw texts (a path of text lines or JSONL with "text", or strings) of
            the new domain, read lazily: the old labels are rehearsed on them (distillation
            and silver examples); without dev data, the last tenth measures retention.
        rehearse_ratio (float): silver examples (the original's predictions on raw texts) per
            training example, every epoch.
        rehearse_distill (float): raw texts distilled per training example, with every batch
            (rehearse.distill: the ner is pulled toward the original's predictions on them).
    RETURNS (TrainResult): losses and dev scores per epoch, the best epoch, labels, words/s.
    """
    check_settings(dropout=dropout, learn_rate=learn_rate, patience=patience, buffer_size=buffer_size,
                   train_data=train_data, checkpoint=checkpoint, resume=resume,
                   rehearse_ratio=rehearse_ratio, rehearse_distill=rehearse_distill, keep_original=keep_original,
                   rehearse=rehearse, new_label_margin=new_label_margin, original_margin=original_margin)
    if gpu_id >= 0:
        require(gpu_id)
    if batch_unit is not None:
        check_unit(batch_unit)
    fix_random_seed(seed)
    rng = random.Random(seed)
    data = _read(nlp, train_data, dev_data, buffer_size)
    kept = _kept_labels(nlp, data.labels, keep_original, rehearse, rehearse_data is not None,
                        original_margin is None or math.isfinite(original_margin))
    unknown = sorted(set(data.labels) - ner_labels(nlp))  # before the kept ner learns to follow them
    plan = _plan(nlp, data, False if kept else rehearse, rehearse_data, rehearse_ratio, rehearse_distill, seed)
    trained, optimizer, resumed = _prepare(nlp, data, learn_rate, bool(kept), average)
    if dropout is None:
        dropout = FINE_TUNE_DROPOUT if resumed else DEFAULT_DROPOUT
    if batch_unit is None and batch_size is None:
        batch_unit = GPU_BATCH_UNIT if gpu_id >= 0 else \
            "words" if not resumed and data.size >= WORDS_MIN_EXAMPLES else "examples"
    elif batch_unit is None:
        batch_unit = "examples"
    if batch_size is None:
        batch_size = DEFAULT_BATCH_SIZE if batch_unit == "examples" else \
            GPU_BATCH_SIZE if gpu_id >= 0 else DEFAULT_WORDS_BATCH_SIZE
    # Left to the default, a new ner's averages and its weights are both scored on the dev data.
    compare = average is None and optimizer.averages is not None and bool(data.dev)
    confident, confident_margin = None, None
    if kept:
        name = free_name(nlp, CONFIDENT_NER)
        confident_margin = add_confident_pass(nlp, kept, trained[-1], data.examples(), original_margin, name)
        confident = name if confident_margin is not None else None
    rate = optimizer.learn_rate
    if gpu_id >= 0:
        use_gpu(nlp, gpu_id)
        if learn_rate is None and not resumed:
            warm_up(optimizer, learn_rate_schedule())
            rate = GPU_LEARN_RATE
    result = TrainResult(labels=data.labels, resumed=resumed, rehearsed=plan.rehearsed if plan else [],
                         retention_examples=plan.retention if plan else [], kept=kept, trained=trained[-1],
                         confident=confident, confident_margin=confident_margin, learn_rate=rate,
                         dropout=dropout, batch_unit=batch_unit)
    fingerprint = {
        "data": data.digest, "dev": data.dev_digest, "labels": data.labels, "n_iter": n_iter,
        "dropout": dropout, "batch_size": repr(batch_size), "batch_unit": batch_unit, "learn_rate": optimizer.learn_rate, "seed": seed,
        "average": optimizer.averages is not None, "compare": compare,
        "buffer_size": buffer_size, "patience": patience, "pipeline": nlp.pipe_names,
        "rehearsed": result.rehearsed, "rehearse_ratio": rehearse_ratio, "rehearse_distill": rehearse_distill,
        "kept": kept, "new_label_margin": new_label_margin, "original_margin": original_margin,
    }
    # Floats as their repr: JSON would round them, and a resumed run must match exactly.
    fingerprint = {k: repr(v) if isinstance(v, float) else v for k, v in fingerprint.items()}
    run = _Run(nlp, trained, optimizer, rng, data, plan, result, dropout, batch_size, batch_unit, buffer_size,
               patience, Path(checkpoint) if checkpoint is not None else None, fingerprint, on_epoch, progress)
    run.compare = compare
    if kept:
        # The copy finds the data's labels, the original its own: the copy never starts an
        # entity of a kept label (naive training taught it they are not entities, so they
        # would only be its mistakes, forced on the original).
        run.bars = [(kept, -NEVER), (unknown, new_label_margin)]
        run.scored = [name for name in (confident, "ner") if name is not None]
    if resume:
        run.restore()
    with nlp.select_pipes(enable=trained), _stop_signals(run.checkpoint is not None) as stop:
        run.epochs(n_iter, stop)
    run.finish()
    return result


def check_settings(*, dropout: Optional[float] = None, learn_rate: Optional[float] = None,
                   patience: int = DEFAULT_PATIENCE, buffer_size: int = 0, train_data: Any = None,
                   checkpoint: Any = None, resume: bool = False, rehearse_ratio: float = 0.0,
                   rehearse_distill: float = 0.0, keep_original: Optional[bool] = None,
                   rehearse: Optional[bool] = None, new_label_margin: float = NEW_LABEL_MARGIN,
                   original_margin: Optional[float] = None) -> None:
    """Refuse settings that cannot work, before anything changes."""
    for name, margin, use in (("new_label_margin (--new-label-margin)", new_label_margin, "0 (none) or more"),
                              ("original_margin (--original-margin)", original_margin,
                               "0 or more (inf: the original never goes first)")):
        if margin is not None and not margin >= 0:  # NaN too
            raise UsageError(f"{name} {margin} is not a margin: use {use}")
    if keep_original and rehearse:
        raise UsageError("keep_original (--keep-original) leaves the ner unchanged and rehearse (--rehearse) "
                         "trains it: choose one")
    for name, ratio in (("rehearse_ratio (--rehearse-ratio)", rehearse_ratio),
                        ("rehearse_distill (--rehearse-distill)", rehearse_distill)):
        if ratio < 0:
            raise UsageError(f"{name} {ratio} is negative: use 0 (off) or more texts per training example")
    if dropout is not None and not 0.0 <= dropout < 1.0:
        raise UsageError(f"dropout {dropout} is not a rate: use a value from 0 up to (not including) 1")
    if learn_rate is not None and learn_rate < 0:
        raise UsageError(f"learn rate {learn_rate} is negative: use 0 or more (spaCy's default is 0.001)")
    if patience < 0:
        raise UsageError(f"patience {patience} is negative: use 0 (never stop early) or more epochs")
    if resume and checkpoint is None:
        raise UsageError("resume=True needs the checkpoint directory to resume from")
    if buffer_size > 0 and train_data is not None and not isinstance(train_data, (str, Path, list, tuple)) and not callable(train_data):
        raise UsageError("streamed training data is read once an epoch: pass a path, a list or a "
                         "corpus callable such as NerCorpus(path), not a one-shot iterator")


def _read(nlp: Language, train_data: TrainingData, dev_data: Optional[TrainingData], buffer_size: int) -> _Data:
    """The data, read once for its labels and a digest (which a resumed run must match)."""
    if buffer_size <= 0:
        # Each epoch is shuffled whole, in memory: read and align the data once.
        items = list(to_examples(nlp, train_data))
        examples: Callable[[], Iterable[Example]] = lambda: items  # noqa: E731
    else:
        examples = lambda: to_examples(nlp, train_data)  # noqa: E731
    corpus = NerCorpus(train_data) if isinstance(train_data, (str, Path)) else train_data
    stream = None
    # (A limit counts the file's first examples: those are shuffled as Examples.)
    if buffer_size > 0 and isinstance(corpus, NerCorpus) and not corpus.limit:
        reader = corpus
        stream = lambda rng: reader.examples(nlp, lambda records: buffer_shuffle(records, rng, buffer_size))  # noqa: E731
    counts: Dict[str, int] = {}
    digest = hashlib.sha256()
    size = 0
    for eg in examples():
        size += 1
        ents = [(e.start, e.end, e.label_) for e in eg.reference.ents]
        digest.update(repr((eg.reference.text, ents)).encode("utf8"))
        for _, _, label in ents:
            counts[label] = counts.get(label, 0) + 1
    labels = dict(sorted(counts.items(), key=lambda item: -item[1]))
    if isinstance(corpus, NerCorpus):
        check_label_filter(corpus, counts=labels)  # names the labels the data has
    if not labels:
        raise UsageError("the training data holds no entities; check the data and the labels filter")
    warn_low_counts(labels, "training data")
    dev = list(to_examples(nlp, dev_data)) if dev_data is not None else None
    dev_digest = hashlib.sha256()
    for eg in dev or []:
        dev_digest.update(repr((eg.reference.text, [(e.start, e.end, e.label_) for e in eg.reference.ents]))
                          .encode("utf8"))
    return _Data(examples, buffer_size <= 0, size, dev, labels, digest.hexdigest(), dev_digest.hexdigest() if dev else "",
                 stream)


def _kept_labels(nlp: Language, labels: Iterable[str], keep_original: Optional[bool],
                 rehearse: Optional[bool], raw_texts: bool = False, confident: bool = False) -> List[str]:
    """The labels the pipeline's ner knows and the data lacks, when that ner is to be kept."""
    forgotten = sorted(Rehearsal(nlp, labels).old_labels)
    if keep_original is False or (keep_original is None and rehearse is not None) or not forgotten:
        if keep_original and not forgotten:
            logger.warning("nothing to keep: the pipeline has no trained ner, or the data has every label it knows")
        return []
    if keep_original is None:
        logger.warning("keeping the ner, which knows %s, unchanged: a copy of it, '%s', learns the data and "
                       "runs before it%s (keep_original=False / --no-keep-original trains the ner itself)%s",
                       ", ".join(forgotten), NEW_NER,
                       f", after '{CONFIDENT_NER}', which sets the entities the original is sure of where the training "
                       "data allows (original_margin / --original-margin)" if confident else "",
                       "; the raw texts only measure retention (rehearse=True / --rehearse rehearses on them)"
                       if raw_texts else "")
    return forgotten


def _plan(nlp: Language, data: _Data, rehearse: Optional[bool], raw: Optional[RawData], ratio: float,
          distill_ratio: float, seed: int) -> Optional[RehearsalPlan]:
    """The rehearsal plan, made while the pipeline is unchanged; the gold gets the original's
    old-label predictions (in memory now, or as each streamed epoch is read)."""
    retention = [eg.reference.text for eg in data.dev] if data.dev else None
    plan = plan_rehearsal(nlp, data.labels, data.examples(), rehearse, raw, ratio=ratio,
                          distill_ratio=distill_ratio, retention_texts=retention, seed=seed)
    if plan is not None and plan.rehearsed:
        if data.in_memory:
            filled = list(plan.fill(data.examples()))
            data.examples = lambda: filled  # noqa: E731
        else:
            examples, stream = data.examples, data.stream
            data.examples = lambda: plan.fill(examples())  # noqa: E731
            if stream is not None:
                data.stream = lambda rng: plan.fill(stream(rng))  # noqa: E731
    return plan


def _prepare(nlp: Language, data: _Data, learn_rate: Optional[float], keep_original: bool,
             average: Optional[bool] = None) -> tuple:
    """The components to train, their optimizer, and whether `ner` resumes from weights."""
    ner, resumed, trained = prepare_ner(nlp, keep_original)
    sample = lambda: islice(data.examples(), 100)  # noqa: E731
    with nlp.select_pipes(enable=trained):
        if resumed:
            for label in data.labels:
                ner.add_label(label)
            if keep_original:
                follow_labels(component(nlp, "ner"), data.labels)
            optimizer = nlp.resume_training()
        elif len(trained) > 1:
            # A new pipeline whose ner listens to an untrained tok2vec: both learn together.
            for label in data.labels:
                ner.add_label(label)
            optimizer = nlp.initialize(sample)
        else:
            ner.initialize(sample, nlp=nlp, labels=move_table(data.labels))
            optimizer = nlp.create_optimizer()
    if average is None:
        average = not resumed and DEFAULT_AVERAGE
    if average != (optimizer.averages is not None):
        settings = {**nlp.config["training"]["optimizer"], "use_averages": average}
        optimizer = registry.resolve({"optimizer": settings})["optimizer"]
    if learn_rate is not None:
        optimizer.learn_rate = learn_rate
    elif resumed and not keep_original:
        optimizer.learn_rate = FINE_TUNE_LEARN_RATE
    return trained, optimizer, resumed


@contextmanager
def _stop_signals(enabled: bool) -> Iterator[Dict[str, int]]:
    """While enabled, SIGINT and SIGTERM only note the signal, so that the loop can finish the
    current batch and save a checkpoint; a second signal acts as usual."""
    stop: Dict[str, int] = {}
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def note(signum: int, frame: Any) -> None:
        stop.setdefault("signum", signum)
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    for sig in previous:
        signal.signal(sig, note)
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Run:
    """One training run's moving parts, so that each step is a small method."""

    def __init__(self, nlp: Language, trained: List[str], optimizer: Optimizer, rng: random.Random, data: _Data,
                 plan: Optional[RehearsalPlan], result: TrainResult, dropout: float, batch_size: BatchSize,
                 batch_unit: str, buffer_size: int, patience: int, checkpoint: Optional[Path], fingerprint: Dict[str, Any],
                 on_epoch: Optional[OnEpoch], progress: bool):
        self.nlp, self.trained, self.optimizer, self.rng = nlp, trained, optimizer, rng
        self.data, self.plan, self.result = data, plan, result
        self.dropout, self.batch_size, self.batch_unit = dropout, batch_size, batch_unit
        self.buffer_size, self.patience = buffer_size, patience
        self.checkpoint, self.fingerprint = checkpoint, fingerprint
        self.on_epoch, self.progress = on_epoch, progress
        self.bars: List[Tuple[List[str], float]] = []  # (labels, margin) for raise_bar (keep_original)
        self.scored: List[str] = []  # untrained components the saved pipeline runs on the dev data
        self.position = Position()
        self.steps = 0
        self.best_weights: Dict[str, bytes] = {}
        self.resumed_state: Optional[RunState] = None
        self.epoch_words, self.epoch_seconds = 0, 0.0
        self.compare = False  # score the weights as well as their averages, keep the better

    def weights(self, averaged: bool) -> Any:
        """Within the block, the pipeline holds the averaged weights (when kept), else its own."""
        averages = self.optimizer.averages
        return self.nlp.use_params(averages) if averaged and averages else nullcontext()

    def candidates(self) -> List[bool]:
        """Whether each candidate scored after an epoch is the averaged weights."""
        averages = self.optimizer.averages is not None
        return [True, False] if self.compare else [averages]

    # -- checkpoints

    def restore(self) -> None:
        assert self.checkpoint is not None
        state = load_checkpoint(self.checkpoint, self.fingerprint)
        load_component_bytes(self.nlp, state.weights)
        self.steps = restore_optimizer(self.optimizer, state.optimizer, self.nlp, self.trained)
        self.best_weights = state.best_weights
        for name in _PROGRESS:
            setattr(self.result, name, state.progress[name])
        self.epoch_words, self.epoch_seconds = state.progress["epoch_words"], state.progress["epoch_seconds"]
        self.position = state.position
        self.resumed_state = state
        if state.position.batch == 0:
            set_random_states(self.rng, state.randomness)

    def save(self, epoch_start: Dict[str, Any], losses: Dict[str, float], silver: Optional[List[Example]]) -> None:
        if self.checkpoint is None:
            return
        extra = {}
        if silver is not None and self.position.batch:
            extra["silver"] = DocBin(docs=[eg.reference for eg in silver], store_user_data=False).to_bytes()
        state = RunState(
            position=self.position,
            weights=component_bytes(self.nlp, self.trained),
            best_weights=self.best_weights,
            optimizer=optimizer_state(self.optimizer, self.nlp, self.trained, self.steps),
            randomness=random_states(self.rng),
            epoch_randomness=epoch_start,
            epoch_losses=losses,
            progress={**{name: getattr(self.result, name) for name in _PROGRESS},
                      "epoch_words": self.epoch_words, "epoch_seconds": self.epoch_seconds},
            extra=extra,
        )
        save_checkpoint(self.checkpoint, self.fingerprint, state)

    # -- epochs

    def epochs(self, n_iter: int, stop: Dict[str, int]) -> None:
        bad_epochs = self._epochs_since_best()
        for epoch in range(self.position.epoch, n_iter):
            if self.patience and bad_epochs >= self.patience:
                self.result.stopped_early = True
                logger.info("stopping after epoch %d: no dev improvement in %d epochs", epoch, self.patience)
                return
            self.epoch(epoch, stop)
            bad_epochs = self._epochs_since_best()
            if "signum" in stop:
                self._interrupted(stop["signum"])

    def _epochs_since_best(self) -> int:
        if self.result.best_epoch is None:
            return 0
        return len(self.result.epochs) - self.result.best_epoch

    def _interrupted(self, signum: int) -> None:
        assert self.checkpoint is not None
        raise TrainingInterrupted(signum, self.checkpoint, self.result)

    def epoch(self, epoch: int, stop: Dict[str, int]) -> None:
        state, self.resumed_state = self.resumed_state, None
        skip = 0
        losses: Dict[str, float] = {}
        silver = None
        if state is not None and state.position.batch:
            # Inside an epoch: replay its shuffle from the epoch's start and skip the batches
            # already trained, then go on with the random states of the interruption.
            skip, losses = state.position.batch, dict(state.epoch_losses)
            set_random_states(self.rng, state.epoch_randomness)
            if "silver" in state.extra:
                docs = DocBin().from_bytes(state.extra["silver"]).get_docs(self.nlp.vocab)
                silver = [Example(same_tokens(self.nlp.vocab, doc), doc) for doc in docs]
        epoch_start = random_states(self.rng)
        plan = self.plan
        stream = self.data.stream
        examples = stream(self.rng) if stream is not None else self.data.examples()
        if plan is not None and plan.rehearsed and plan.ratio:
            if silver is None:
                silver = plan.epoch_silver(epoch, self.nlp)
            examples = plan.epoch(examples, silver)
        batches = make_batches(examples, batch_sizes(self.batch_size), self.rng, self.buffer_size,
                               unit=self.batch_unit, shuffled=stream is not None)
        bar = tqdm(total=self.data.size if self.buffer_size <= 0 else None, unit=" examples",
                   desc=f"epoch {epoch + 1}", leave=False, disable=not self.progress)
        words, start = 0, time.perf_counter()
        # The interruption's random states, restored once the replay reaches its position.
        pending = state.randomness if state is not None and skip else None
        for i, batch in enumerate(batches):
            if i < skip:
                continue
            if pending is not None:
                set_random_states(self.rng, {**pending, "rng": self.rng.getstate()})
                pending = None
            if plan is not None and plan.distills:
                # One optimizer step for the batch and its distillation (see RehearsalPlan.distill).
                # sgd=False (which spaCy's hints omit) only accumulates the gradient.
                self.nlp.update(batch, drop=self.dropout, sgd=False, losses=losses)  # type: ignore[arg-type]
                plan.distill(self.nlp, self.steps, len(batch), sgd=self.optimizer, losses=losses)
            else:
                self.nlp.update(batch, drop=self.dropout, sgd=self.optimizer, losses=losses)
            if self.optimizer.schedules:
                self.optimizer.step_schedules()
            self.steps += 1
            words += sum(len(eg.predicted) for eg in batch)
            bar.update(len(batch))
            if "signum" in stop:
                bar.close()
                self._add_time(words, time.perf_counter() - start)
                self.position = Position(epoch, i + 1)
                self.save(epoch_start, losses, silver)
                self._interrupted(stop["signum"])
        bar.close()
        if pending is not None:  # stopped after the epoch's last batch
            set_random_states(self.rng, {**pending, "rng": self.rng.getstate()})
        self._add_time(words, time.perf_counter() - start)
        self._end_epoch(epoch, losses)
        self.position = Position(epoch + 1, 0)
        self.save(epoch_start, {}, None)

    def _add_time(self, words: int, seconds: float) -> None:
        self.result.n_words += words
        self.result.seconds += seconds
        self.epoch_words += words
        self.epoch_seconds += seconds

    def _end_epoch(self, epoch: int, losses: Dict[str, float]) -> None:
        result = self.result
        loss = float(losses.get(self.trained[-1], 0.0))
        result.losses.append(loss)
        scores: Optional[Dict[str, Any]] = None
        averaged: Optional[bool] = None
        if self.data.dev:
            for candidate in self.candidates():
                with self.weights(candidate):
                    # Scored as it would be saved (with the kept original's bars, see finish).
                    with barred(component(self.nlp, self.trained[-1]), self.bars), self._enabled(self.scored):
                        evaluation = evaluate(self.nlp, self.data.dev)
                    f = evaluation.scores["ents_f"]
                    if scores is not None and f <= scores["ents_f"]:
                        continue
                    scores, averaged = evaluation.scores, candidate
                    if result.best_score is None or f > result.best_score:
                        result.best_epoch, result.best_score = epoch + 1, f
                        result.best_evaluation = evaluation
                        self.best_weights = component_bytes(self.nlp, self.trained)
            assert scores is not None  # every run scores one candidate at least
            result.scores.append(scores)
        words, seconds = self.epoch_words, self.epoch_seconds
        row = {
            "epoch": epoch + 1, "loss": loss, "words": words, "seconds": seconds,
            "words_per_second": words / seconds if seconds else 0.0,
            "dev": None if scores is None else {
                "p": scores["ents_p"], "r": scores["ents_r"], "f": scores["ents_f"],
                "per_label": {label: {k: s[k] for k in ("p", "r", "f")}
                              for label, s in scores["ents_per_type"].items()}},
            "best": result.best_epoch == epoch + 1,
            "averaged": averaged,
        }
        self.epoch_words, self.epoch_seconds = 0, 0.0
        result.epochs.append(row)
        if self.on_epoch is not None:
            self.on_epoch(row)

    @contextmanager
    def _enabled(self, names: List[str]) -> Iterator[None]:
        """Within the block, these components run too (training runs only the trained ones)."""
        disabled = [name for name in names if name in self.nlp.disabled]
        for name in disabled:
            self.nlp.enable_pipe(name)
        try:
            yield
        finally:
            for name in disabled:
                self.nlp.disable_pipe(name)

    def finish(self) -> None:
        """Leave the pipeline with the best epoch's weights (the last without dev), averaged or
        not as they were scored."""
        averaged = self.result.epochs[-1].get("averaged") if self.result.epochs else None
        with self.weights(self.optimizer.averages is not None if averaged is None else averaged):
            last = component_bytes(self.nlp, self.trained)
        best = self.best_weights or last
        if self.bars:
            last, best = self._raised(last), self._raised(best)
        self.result.last_weights = last
        load_component_bytes(self.nlp, best)

    def _raised(self, weights: Dict[str, bytes]) -> Dict[str, bytes]:
        load_component_bytes(self.nlp, weights)
        with barred(component(self.nlp, self.trained[-1]), self.bars):
            return component_bytes(self.nlp, self.trained)
