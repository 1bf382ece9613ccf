"""Benchmark the training step of train() and of the plugin's batcher against spaCy's, paired in one process.

Why
---
`bench_train.py` times whole training processes, one after another; on a shared machine
whose speed drifts by 10-20% over minutes, its words/s ratios move by several percent from
run to run. This script takes the drift out: in one process, it alternates short rounds of
the compared forms on the same batches (the order flips every round) and reports the median
of the per-round ratios.

What it measures (per corpus, train file from ../shared/data)
-------------------------------------------------------------
  update (a)  spaCy's training-loop step, as `spacy train` runs it on the `spacy init config
              -p ner -o efficiency` pipeline (tok2vec component + listening ner):
              nlp.update(batch, drop, sgd=False), finish_update per component, step_schedules
  update (c)  train()'s step: nlp.update(batch, drop, sgd=optimizer) on the pipeline train()
              is handed in bench_train (ner holding its own copy of that tok2vec)
  batch (a)   one epoch cut by spacy.batch_by_sequence.v1 (compounding 4 -> 32 x1.001)
  batch (b)   one epoch cut by spacy-ner-trainer.shuffled_batches.v1 (same sizes, default buffer)

Both update forms start from the same seed and see the same batches; each round is --steps
batches of --batch examples with dropout 0.5. `x(a)` is the median over rounds of
time(a) / time(form): above 1.00 the form is faster. The update step is what the trainers
spend their loop in (bench_train prints that train() spends about 99% of its loop in it).

Run
---
    /work/venv/bin/python bench/bench_update.py                 # ~3 min
    /work/venv/bin/python bench/bench_update.py --rounds 24 --corpora bc5cdr
"""
import argparse
import random
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from spacy.cli.init_config import init_config
from spacy.language import Language
from spacy.training import Example
from spacy.util import fix_random_seed, load_model_from_config, registry
from thinc.api import compounding

from spacy_ner_trainer import NerCorpus, shuffled_batches_v1

ROOT = Path(__file__).resolve().parents[2]
CORPORA = {"wnut17": "wnut17/wnut17train.conll", "bc5cdr": "bc5cdr/train.tsv"}
DROPOUT = 0.5
SCHEDULE = (4.0, 32.0, 1.001)


def pipeline(listener: bool, train: Path) -> Tuple[Language, object, List[Example]]:
    """The init-config pipeline, initialized on the training file, and its examples."""
    fix_random_seed(0)
    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency")
    nlp = load_model_from_config(config.interpolate(), auto_fill=True)
    if not listener:
        nlp.replace_listeners("tok2vec", "ner", ["model.tok2vec"])
        nlp.remove_pipe("tok2vec")
    examples = list(NerCorpus(train)(nlp))
    optimizer = nlp.initialize(lambda: examples)
    return nlp, optimizer, examples


def spacy_step(nlp: Language, optimizer, batch: List[Example]) -> None:
    # spacy.training.loop.train_while_improving, accumulate_gradient = 1
    nlp.update(batch, drop=DROPOUT, annotates=[], sgd=False, exclude=[], losses={})
    for _, proc in nlp.pipeline:
        if hasattr(proc, "finish_update") and getattr(proc, "is_trainable", False):
            proc.finish_update(optimizer)
    optimizer.step_schedules()


def train_step(nlp: Language, optimizer, batch: List[Example]) -> None:
    nlp.update(batch, drop=DROPOUT, sgd=optimizer, losses={})


def paired(forms: Dict[str, Callable[[], None]], rounds: int) -> Dict[str, List[float]]:
    """Seconds per round for each form, the order flipping every round."""
    names = list(forms)
    times: Dict[str, List[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            start = time.perf_counter()
            forms[name]()
            times[name].append(time.perf_counter() - start)
    return times


def bench_corpus(name: str, train: Path, rounds: int, steps: int, size: int) -> List[Tuple]:
    a_nlp, a_opt, a_examples = pipeline(True, train)
    c_nlp, c_opt, c_examples = pipeline(False, train)
    rng = random.Random(0)
    order = list(range(len(a_examples)))
    current: List[List[int]] = []

    def draw() -> None:
        rng.shuffle(order)
        current[:] = [order[i:i + size] for i in range(0, steps * size, size)]

    def run(nlp, optimizer, examples, step) -> Callable[[], None]:
        return lambda: [step(nlp, optimizer, [examples[i] for i in ids]) for ids in current]

    words = []
    update_times: Dict[str, List[float]] = {"a": [], "c": []}
    for _ in range(rounds // 2):
        draw()
        words.append(sum(len(a_examples[i].predicted) for ids in current for i in ids))
        got = paired({"a": run(a_nlp, a_opt, a_examples, spacy_step),
                      "c": run(c_nlp, c_opt, c_examples, train_step)}, 2)
        for key, value in got.items():
            update_times[key].extend(value)

    spacy_batcher = registry.batchers.get("spacy.batch_by_sequence.v1")
    batchers = {
        "a": lambda: sum(1 for _ in spacy_batcher(size=compounding(*SCHEDULE))(a_examples)),
        "b": lambda: sum(1 for _ in shuffled_batches_v1(size=compounding(*SCHEDULE))(a_examples)),
    }
    batch_times = paired(batchers, rounds)
    epoch_update = statistics.median(update_times["a"]) * len(a_examples) / (steps * size)
    rows = []
    per_round_words = statistics.median(words)
    for form, label in (("a", "update (a) spacy train step"), ("c", "update (c) train() step")):
        ratios = [a / t for a, t in zip(update_times["a"], update_times[form])]
        med = statistics.median(update_times[form])
        rows.append((name, label, len(update_times[form]), f"{med:.3f}", f"{per_round_words / med:,.0f}",
                     f"{statistics.median(ratios):.3f}", f"{min(ratios):.2f}-{max(ratios):.2f}", ""))
    for form, label in (("a", "batch (a) batch_by_sequence"), ("b", "batch (b) shuffled_batches")):
        ratios = [a / t for a, t in zip(batch_times["a"], batch_times[form])]
        med = statistics.median(batch_times[form])
        rows.append((name, label, len(batch_times[form]), f"{med:.4f}", "", f"{statistics.median(ratios):.3f}",
                     f"{min(ratios):.2f}-{max(ratios):.2f}", f"{100 * med / epoch_update:.2f}%"))
    return rows


def main(argv: Sequence[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "shared" / "data")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--rounds", type=int, default=16, help="rounds per form (even)")
    parser.add_argument("--steps", type=int, default=25, help="batches per round")
    parser.add_argument("--batch", type=int, default=24, help="examples per batch")
    args = parser.parse_args(argv)
    header = ("corpus", "form", "rounds", "median s", "words/s", "x(a) median", "x(a) range", "of an epoch's updates")
    rows = [header]
    for name in args.corpora.split(","):
        rows.extend(bench_corpus(name, args.data / CORPORA[name], args.rounds, args.steps, args.batch))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("  ".join(str(cell).ljust(w) if j < 2 else str(cell).rjust(w) for j, (cell, w) in enumerate(zip(row, widths))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\nrounds of {args.steps} batches x {args.batch} examples, dropout {DROPOUT}; x(a) = time(a) / time(form) "
          "per round (paired, order flipped every round), > 1 is faster; batch rows: one epoch over the "
          "in-memory training examples, and that time as a share of an epoch's (a) update time")


if __name__ == "__main__":
    main()
