"""Choose the defaults of `train()`: how many epochs (n_iter) and which dropout.

What it measures
----------------
For each dropout in --dropouts, a blank English pipeline (`spacy.blank("en")`, the `ner` that
`train()` adds: spaCy's default NER model) is trained with `spacy_ner_trainer.train()` (seed 0,
the default batch-size schedule) for --max-epochs epochs on a slice of each corpus, and its
dev F (`TrainResult.scores[i]["ents_f"]`) is recorded after every epoch:

  bc5cdr   the first --bc5cdr-limit sentences of bc5cdr/train.tsv, scored on the first
           --bc5cdr-dev-limit sentences of bc5cdr/devel.tsv
  wnut17   the first --wnut17-limit sentences of wnut17/wnut17train.conll (0: all), scored
           on wnut17/emerging.dev.conll (--wnut17-dev-limit, 0: all)

Every run reads its data afresh into the new pipeline's vocab, with `NerCorpus(path, limit=...)`.
Runs go one after another, never in parallel (the machine is shared: times are indicative).

The recipe's tiny case: the recipe's two sentences ("Who is Shaka Khan?" PERSON [7, 17];
"I like London and Berlin." LOC [7, 13], [18, 24]) are trained for --tiny-epochs epochs per
dropout and seed (--tiny-seeds), and after every epoch `verify(nlp, data, min_recall=1.0,
round_trip=False).ok` tells whether all 3 training entities are recognized. Reported: the
first epoch at which they are, and the epoch from which they stay recognized to the end.

Output
------
(1) One table per corpus: a row per dropout; dev F (%) after epochs 1, 2, 3, 5, 8, 10, 15,
    20, ... (up to --max-epochs), the best F and the epoch it was reached at, and "99%@": the
    first epoch whose F is at least 99% of that run's best F.
(2) A recommendation: the dropout with the highest median (over corpora) best F, and the
    smallest n_iter at which every corpus reaches >= 99% of its best F under that dropout
    (capped at --max-epochs; a "+" marks a best F reached at the last epoch, i.e. perhaps
    still rising), plus the tiny case's result.

Caveats: one seed per corpus run; slices of the corpora (smaller data needs more epochs per
update count, so the n_iter found on a slice errs on the long side for larger data); dev F
on wnut17 is low and noisy, so its 99% epoch moves with noise of a point or so.

Run
---
    /work/venv/bin/python bench/bench_defaults.py            # full run (~30 min on 2 busy cores)
    /work/venv/bin/python bench/bench_defaults.py --quick    # smoke run: small slices, 2 epochs
    /work/venv/bin/python bench/bench_defaults.py --dropouts 0.2 0.5 --max-epochs 30 --json /tmp/curves.json
"""
import argparse
import json
import logging
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import spacy
from spacy.training import Example

import spacy_ner_trainer
from spacy_ner_trainer import NerCorpus
from spacy_ner_trainer.loop import DEFAULT_DROPOUT, DEFAULT_N_ITER

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_DROPOUTS = (0.1, 0.2, 0.3, 0.5)
# Measured on the shared 2-core machine (load ~3 from other jobs): one epoch of 1500 bc5cdr
# sentences took ~19 s and of all 3394 wnut17 sentences ~36 s. The slices below cost ~23 s
# an epoch per dropout for both corpora together (dev scoring included), so 4 dropouts x 20
# epochs take ~30 min.
DEFAULT_MAX_EPOCHS = 20
DEFAULT_LIMITS = {"bc5cdr": (500, 1000), "wnut17": (1000, 0)}  # (train, dev) sentences; 0: all
CORPUS_FILES = {
    "bc5cdr": ("bc5cdr/train.tsv", "bc5cdr/devel.tsv"),
    "wnut17": ("wnut17/wnut17train.conll", "wnut17/emerging.dev.conll"),
}
TINY_DATA = [
    ("Who is Shaka Khan?", {"entities": [(7, 17, "PERSON")]}),
    ("I like London and Berlin.", {"entities": [(7, 13, "LOC"), (18, 24, "LOC")]}),
]
DEFAULT_TINY_EPOCHS = 100
DEFAULT_TINY_SEEDS = 5
TARGET = 0.99  # fraction of the best dev F that counts as converged
BASE_COLUMNS = (1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)


@dataclass
class Corpus:
    name: str
    train: Path
    dev: Path
    train_limit: int
    dev_limit: int


@dataclass
class Curve:
    """Dev F per epoch of one training run, and what the run cost."""

    corpus: str
    dropout: float
    f: List[float] = field(default_factory=list)  # 0-1, one per epoch
    n_train: int = 0
    n_dev: int = 0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0

    @property
    def best(self) -> float:
        return max(self.f)

    @property
    def best_epoch(self) -> int:
        return self.f.index(self.best) + 1

    @property
    def converged_epoch(self) -> int:
        """The first epoch (1-based) whose F reaches TARGET of the run's best F."""
        return next(i for i, f in enumerate(self.f, 1) if f >= TARGET * self.best)


@dataclass
class TinyRun:
    """The tiny case, one dropout and seed: after which epochs all 3 entities were found."""

    dropout: float
    seed: int
    ok: List[bool] = field(default_factory=list)

    @property
    def first(self) -> Optional[int]:
        return next((i for i, ok in enumerate(self.ok, 1) if ok), None)

    @property
    def stable(self) -> Optional[int]:
        """The epoch from which every later epoch recognizes all 3 entities."""
        if not self.ok or not self.ok[-1]:
            return None
        epoch = len(self.ok)
        while epoch > 1 and self.ok[epoch - 2]:
            epoch -= 1
        return epoch


def read(path: Path, limit: int, nlp: spacy.language.Language) -> List[Example]:
    return list(NerCorpus(path, limit=limit)(nlp))


def train_curve(corpus: Corpus, dropout: float, max_epochs: int) -> Curve:
    """Train a blank pipeline on `corpus` and record dev F after every epoch."""
    start = time.perf_counter()
    nlp = spacy.blank("en")
    train_examples = read(corpus.train, corpus.train_limit, nlp)
    dev_examples = read(corpus.dev, corpus.dev_limit, nlp)
    curve = Curve(corpus.name, dropout, n_train=len(train_examples), n_dev=len(dev_examples))

    def on_epoch(epoch: int, loss: float, scores: Optional[Dict[str, Any]]) -> None:
        f = float(scores["ents_f"]) if scores else 0.0
        curve.f.append(f)
        print(f"  {corpus.name} dropout={dropout} epoch {epoch + 1:>3}: loss {loss:9.1f}  dev F {100 * f:5.1f}"
              f"  ({time.perf_counter() - start:6.0f} s)", file=sys.stderr, flush=True)

    result = spacy_ner_trainer.train(nlp, train_examples, dev_data=dev_examples, n_iter=max_epochs,
                                     dropout=dropout, seed=0, on_epoch=on_epoch)
    curve.train_seconds = result.seconds
    curve.wall_seconds = time.perf_counter() - start
    return curve


def tiny_run(dropout: float, seed: int, epochs: int) -> TinyRun:
    """Train the recipe's two sentences; after each epoch, verify all 3 entities are found."""
    nlp = spacy.blank("en")
    run = TinyRun(dropout, seed)

    def on_epoch(epoch: int, loss: float, scores: Optional[Dict[str, Any]]) -> None:
        report = spacy_ner_trainer.verify(nlp, TINY_DATA, min_recall=1.0, round_trip=False)
        run.ok.append(report.ok)

    spacy_ner_trainer.train(nlp, TINY_DATA, n_iter=epochs, dropout=dropout, seed=seed, on_epoch=on_epoch)
    return run


def columns(max_epochs: int) -> List[int]:
    cols = [c for c in BASE_COLUMNS if c <= max_epochs]
    if max_epochs not in cols:
        cols.append(max_epochs)
    return cols


def pct(f: float) -> str:
    return f"{100 * f:5.1f}"


def corpus_table(curves: List[Curve], max_epochs: int) -> str:
    cols = columns(max_epochs)
    header = f"{'dropout':>7} | " + " ".join(f"{'e' + str(c):>5}" for c in cols) + " |  best  @ep  99%@ | s/epoch"
    lines = [header, "-" * len(header)]
    for c in curves:
        cells = " ".join(pct(c.f[e - 1]) if e <= len(c.f) else f"{'-':>5}" for e in cols)
        flag = "+" if c.best_epoch == len(c.f) else " "
        lines.append(f"{c.dropout:>7} | {cells} | {pct(c.best)} {c.best_epoch:>4}{flag} {c.converged_epoch:>4} |"
                     f" {c.train_seconds / len(c.f):7.1f}")
    return "\n".join(lines)


def recommend(curves: List[Curve], dropouts: Sequence[float], max_epochs: int) -> Tuple[float, int, List[str]]:
    """The dropout with the highest median best F over corpora, the n_iter at which every
    corpus reaches TARGET of its best F under it, and the lines that explain the choice."""
    by_dropout = {d: [c for c in curves if c.dropout == d] for d in dropouts}
    medians = {d: statistics.median(c.best for c in cs) for d, cs in by_dropout.items()}
    lines = ["median best F over corpora, and n_iter for every corpus >= 99% of its best:"]
    for d, cs in by_dropout.items():
        n_iter = min(max(c.converged_epoch for c in cs), max_epochs)
        detail = ", ".join(f"{c.corpus} {c.converged_epoch}" for c in cs)
        lines.append(f"  dropout {d}: median best F {pct(medians[d])}; n_iter {n_iter:>3} ({detail})")
    best_dropout = max(dropouts, key=lambda d: medians[d])  # ties: the first listed
    n_iter = min(max(c.converged_epoch for c in by_dropout[best_dropout]), max_epochs)
    return best_dropout, n_iter, lines


def tiny_summary(runs: List[TinyRun], dropouts: Sequence[float], epochs: int) -> List[str]:
    def fmt(values: List[Optional[int]]) -> str:
        return " ".join(str(v) if v is not None else f">{epochs}" for v in values)

    lines = [f"recipe's 2 sentences (3 entities), verify(min_recall=1.0) after each epoch, "
             f"{epochs} epochs, seeds {sorted({r.seed for r in runs})}:",
             f"  {'dropout':>7} | first epoch all 3 found (per seed) | stays found from (per seed) | median first, stable"]
    for d in dropouts:
        rs = [r for r in runs if r.dropout == d]
        firsts, stables = [r.first for r in rs], [r.stable for r in rs]

        def med(values: List[Optional[int]]) -> str:
            known = [v if v is not None else epochs + 1 for v in values]
            m = statistics.median(known)
            return f">{epochs}" if m > epochs else f"{m:g}"

        lines.append(f"  {d:>7} | {fmt(firsts):<33} | {fmt(stables):<26} | {med(firsts)}, {med(stables)}")
    return lines


def corpora(args: argparse.Namespace) -> List[Corpus]:
    limits = {
        "bc5cdr": (args.bc5cdr_limit, args.bc5cdr_dev_limit),
        "wnut17": (args.wnut17_limit, args.wnut17_dev_limit),
    }
    return [Corpus(name, args.data / train, args.data / dev, *limits[name])
            for name, (train, dev) in CORPUS_FILES.items() if name in args.corpora]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data directory")
    p.add_argument("--dropouts", type=float, nargs="+", default=list(DEFAULT_DROPOUTS))
    p.add_argument("--max-epochs", type=int, default=DEFAULT_MAX_EPOCHS)
    p.add_argument("--corpora", nargs="+", default=list(CORPUS_FILES), choices=list(CORPUS_FILES))
    p.add_argument("--bc5cdr-limit", type=int, default=DEFAULT_LIMITS["bc5cdr"][0], help="train sentences")
    p.add_argument("--bc5cdr-dev-limit", type=int, default=DEFAULT_LIMITS["bc5cdr"][1], help="dev sentences")
    p.add_argument("--wnut17-limit", type=int, default=DEFAULT_LIMITS["wnut17"][0], help="train sentences; 0: all")
    p.add_argument("--wnut17-dev-limit", type=int, default=DEFAULT_LIMITS["wnut17"][1], help="dev sentences; 0: all")
    p.add_argument("--tiny-epochs", type=int, default=DEFAULT_TINY_EPOCHS)
    p.add_argument("--tiny-seeds", type=int, default=DEFAULT_TINY_SEEDS, help="seeds 0..N-1 for the tiny case")
    p.add_argument("--json", type=Path, help="also write the curves and tiny runs here")
    p.add_argument("--quick", action="store_true", help="smoke run: 150/150 sentences, 2 epochs, 1 tiny seed")
    args = p.parse_args(argv)
    if args.quick:
        args.max_epochs, args.tiny_epochs, args.tiny_seeds = 2, 10, 1
        args.bc5cdr_limit = args.bc5cdr_dev_limit = args.wnut17_limit = args.wnut17_dev_limit = 150
    return args


def main(argv: Optional[Sequence[str]] = None) -> None:
    args = parse_args(argv)
    logging.getLogger("spacy.ner_trainer").setLevel(logging.ERROR)  # low-count warnings of the tiny case
    warnings.filterwarnings("ignore", category=UserWarning)
    started = time.perf_counter()
    curves: List[Curve] = []
    for corpus in corpora(args):
        for dropout in args.dropouts:
            curves.append(train_curve(corpus, dropout, args.max_epochs))
    tiny = [tiny_run(d, seed, args.tiny_epochs) for d in args.dropouts for seed in range(args.tiny_seeds)]
    total = time.perf_counter() - started

    print("bench_defaults: train() from spacy.blank('en'), seed 0, default batch schedule; dev F (%) per epoch")
    for corpus in corpora(args):
        cs = [c for c in curves if c.corpus == corpus.name]
        print(f"\n{corpus.name}: {cs[0].n_train} train sentences ({corpus.train.name}), "
              f"{cs[0].n_dev} dev sentences ({corpus.dev.name})")
        print(corpus_table(cs, args.max_epochs))
    print("\n(@ep: epoch of the best F, '+' = at the last epoch, maybe still rising; "
          "99%@: first epoch with F >= 99% of the best; s/epoch: train() seconds, shared machine)")

    dropout, n_iter, lines = recommend(curves, args.dropouts, args.max_epochs)
    print("\nRecommendation")
    print("--------------")
    print("\n".join(lines))
    print(f"  => dropout {dropout} (highest median best F), n_iter {n_iter} "
          f"(every corpus >= 99% of its best F under it; cap {args.max_epochs})")
    current = [c for c in curves if c.dropout == DEFAULT_DROPOUT]
    if current:
        e = min(DEFAULT_N_ITER, args.max_epochs)
        at = ", ".join(f"{c.corpus} {pct(c.f[e - 1])} (best {pct(c.best)})" for c in current)
        print(f"  current defaults n_iter={DEFAULT_N_ITER}, dropout={DEFAULT_DROPOUT}: F at epoch {e}: {at}")
    print("\n" + "\n".join(tiny_summary(tiny, args.dropouts, args.tiny_epochs)))
    print(f"\ntotal run time: {total / 60:.1f} min")
    if args.json:
        args.json.write_text(json.dumps({
            "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "curves": [asdict(c) for c in curves],
            "tiny": [asdict(r) for r in tiny],
            "seconds": total,
        }, indent=1))


if __name__ == "__main__":
    main()
