"""Benchmark the training step of train() and of the plugin's batcher against spaCy's, paired in one process.

`bench_train.py` times whole trainings one after another, so a shared machine's drift (10-20%
over minutes) moves its ratios. Here, in one process, short rounds of the compared forms
alternate on the same batches (the order flips every round); x(a) is the median of the
per-round ratios time(a) / time(form): above 1.00 the form is faster. Per corpus (train file):

  update (a)  spaCy's loop step on the `spacy init config -p ner -o efficiency` pipeline
              (tok2vec + listening ner): nlp.update(sgd=False), finish_update, step_schedules
  update (c)  train()'s step, nlp.update(sgd=optimizer), on bench_train's (c) pipeline
  batch (a)   one epoch cut by spacy.batch_by_sequence.v1 (compounding 4 -> 32 x1.001)
  batch (b)   one epoch cut by spacy-ner-trainer.shuffled_batches.v1 (same sizes), also as
              a share of an epoch's (a) updates

Each update round is --steps batches of --batch examples, dropout 0.5, both forms from seed 0.

    python bench/bench_update.py                 # ~3 min
    python bench/bench_update.py --rounds 24 --corpora bc5cdr
"""
import argparse
import random
from pathlib import Path
from typing import Any, Callable, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.training import Example
from spacy.util import fix_random_seed, load_model_from_config, registry
from thinc.api import compounding

from bench_train import DROPOUT, SCHEDULE, efficiency_config, standalone_ner
from harness import CORPORA, DATA, Results, clock, revision
from spacy_ner_trainer import NerCorpus, shuffled_batches_v1

UPDATE_A, BATCH_A, BATCH_B = "update (a) spacy train step", "batch (a) batch_by_sequence", "batch (b) shuffled_batches"


def pipeline(listener: bool, train: Path) -> Tuple[Language, Any, List[Example]]:
    """The init-config pipeline (or its standalone ner), initialized on the file, and its examples."""
    fix_random_seed(0)
    config = efficiency_config()
    nlp = load_model_from_config(config.interpolate(), auto_fill=True) if listener else standalone_ner(config)
    examples = list(NerCorpus(train)(nlp))
    return nlp, nlp.initialize(lambda: examples), examples


def spacy_step(nlp: Language, optimizer: Any, batch: List[Example]) -> None:
    # spacy.training.loop.train_while_improving, accumulate_gradient = 1
    nlp.update(batch, drop=DROPOUT, annotates=[], sgd=False, exclude=[], losses={})  # type: ignore[arg-type]
    for _, proc in nlp.pipeline:
        if hasattr(proc, "finish_update") and getattr(proc, "is_trainable", False):
            proc.finish_update(optimizer)
    optimizer.step_schedules()


def train_step(nlp: Language, optimizer: Any, batch: List[Example]) -> None:
    nlp.update(batch, drop=DROPOUT, sgd=optimizer, losses={})


def rounds(res: Results, name: str, forms: Sequence[Tuple[str, Callable[[], Any]]], n: int,
           words: Callable[[], float] = lambda: 1.0, prepare: Callable[[], None] = lambda: None) -> None:
    """`n` rounds of every form, the order flipped every round; records work/s per round."""
    for r in range(n):
        prepare()
        amount = words()
        for label, form in (forms if r % 2 == 0 else forms[::-1]):
            with clock() as timed:
                form()
            res.add(label, group=name, pair=r, **{"s": timed.wall, "per s": amount / timed.wall})


def bench_corpus(updates: Results, batches: Results, name: str, train: Path, args: argparse.Namespace) -> float:
    """The rounds of one corpus; returns the share of an epoch's (a) updates that batch (b) costs."""
    a_nlp, a_opt, a_examples = pipeline(True, train)
    c_nlp, c_opt, c_examples = pipeline(False, train)
    rng, order = random.Random(0), list(range(len(a_examples)))
    current: List[List[int]] = []

    def draw() -> None:
        rng.shuffle(order)
        current[:] = [order[i:i + args.batch] for i in range(0, args.steps * args.batch, args.batch)]

    def steps(nlp: Language, optimizer: Any, examples: List[Example], step: Callable) -> Callable[[], None]:
        def run() -> None:
            for ids in current:
                step(nlp, optimizer, [examples[i] for i in ids])

        return run

    rounds(updates, name, [(UPDATE_A, steps(a_nlp, a_opt, a_examples, spacy_step)),
                           ("update (c) train() step", steps(c_nlp, c_opt, c_examples, train_step))], args.rounds,
           words=lambda: float(sum(len(a_examples[i].predicted) for ids in current for i in ids)), prepare=draw)
    by_sequence = registry.batchers.get("spacy.batch_by_sequence.v1")
    rounds(batches, name, [(BATCH_A, lambda: list(by_sequence(size=compounding(*SCHEDULE))(a_examples))),
                           (BATCH_B, lambda: list(shuffled_batches_v1(size=compounding(*SCHEDULE))(a_examples)))],
           args.rounds)
    epoch_update = (updates.median(UPDATE_A, "s", name) or 0.0) * len(a_examples) / (args.steps * args.batch)
    return (batches.median(BATCH_B, "s", name) or 0.0) / epoch_update


def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--corpora", default="wnut17,bc5cdr")
    parser.add_argument("--rounds", type=int, default=16, help="rounds per form (even)")
    parser.add_argument("--steps", type=int, default=25, help="batches per round")
    parser.add_argument("--batch", type=int, default=24, help="examples per batch")
    args = parser.parse_args(argv)
    print(f"bench_update: {revision()}", flush=True)
    updates, batches = Results(UPDATE_A, "x(a)", "form"), Results(BATCH_A, "x(a)", "form")
    shares = {name: bench_corpus(updates, batches, name, args.data / CORPORA[name][0], args)
              for name in args.corpora.split(",")}
    updates.print({"s": ".3f", "per s": ",.0f"}, ratios=["per s"])
    print(f"per s: words/s, rounds of {args.steps} batches x {args.batch} examples, dropout {DROPOUT}\n")
    batches.print({"s": ".4f", "per s": ".1f"}, ratios=["per s"])
    print("per s: epochs cut per second, over the in-memory training examples; " + "; ".join(
        f"{name}: one epoch of (b) = {share:.2%} of an epoch's (a) updates" for name, share in shares.items()))
    print("x(a): median over rounds of time(a) / time(form) (paired, order flipped every round), > 1 is faster")


if __name__ == "__main__":
    main()
