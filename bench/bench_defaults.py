"""Choose the defaults of `train()`: how many epochs (n_iter) and which dropout.

For each dropout in --dropouts, `train()` trains `spacy.blank("en")` (seed 0, the default batch
schedule) for --max-epochs epochs on a slice of each corpus, each run in a fresh process
(bench/harness.py), and records dev F after every epoch:

  bc5cdr   the first --bc5cdr-limit sentences of bc5cdr/train.tsv, dev: the first
           --bc5cdr-dev-limit of bc5cdr/devel.tsv
  wnut17   the first --wnut17-limit sentences of wnut17train.conll (0: all), dev:
           emerging.dev.conll (--wnut17-dev-limit, 0: all)

The recipe's two sentences (3 entities) are trained for --tiny-epochs per dropout and seed
(--tiny-seeds); after every epoch `verify(min_recall=1.0)` tells whether all 3 are found.

Output: a table per corpus (dev F % after epochs 1, 2, 3, 5, 8, ..., the best F and its epoch,
"99%@": the first epoch with F >= 99% of the run's best); the dropout with the highest median
best F and the smallest n_iter at which every corpus reaches 99% of its best under it; and, for
the tiny case, the first epoch all 3 entities are found and the epoch from which they stay found.
One seed per corpus run, on slices (smaller data needs more epochs), so the n_iter errs long.

    python bench/bench_defaults.py            # ~30 min on 2 busy cores
    python bench/bench_defaults.py --quick    # smoke run: 150 sentences, 2 epochs, 1 tiny seed
"""
import argparse
import statistics
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from harness import CORPORA, DATA, Results, call, revision

TINY_DATA = [
    ("Who is Shaka Khan?", {"entities": [(7, 17, "PERSON")]}),
    ("I like London and Berlin.", {"entities": [(7, 13, "LOC"), (18, 24, "LOC")]}),
]
TARGET = 0.99
COLUMNS = (1, 2, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100)


def curve(train: str, dev: str, train_limit: int, dev_limit: int, dropout: float, epochs: int) -> Dict[str, Any]:
    """In a fresh process: dev F (0-1) after each epoch of train() on a blank pipeline."""
    import spacy
    from spacy_ner_trainer import NerCorpus, train as train_ner

    nlp = spacy.blank("en")
    train_data = list(NerCorpus(train, limit=train_limit)(nlp))
    dev_data = list(NerCorpus(dev, limit=dev_limit)(nlp))
    result = train_ner(nlp, train_data, dev_data=dev_data, n_iter=epochs, dropout=dropout, seed=0,
                       patience=0)  # the whole curve
    return {"f": [float(s["ents_f"]) for s in result.scores], "n_train": len(train_data),
            "n_dev": len(dev_data), "seconds": result.seconds}


def tiny(dropout: float, seed: int, epochs: int) -> List[bool]:
    """In a fresh process: after each epoch on the recipe's data, are all 3 entities found?"""
    import logging

    import spacy
    from spacy_ner_trainer import train as train_ner, verify

    logging.getLogger("spacy.ner_trainer").setLevel(logging.ERROR)  # the low-count warning
    nlp, found = spacy.blank("en"), []
    train_ner(nlp, TINY_DATA, n_iter=epochs, dropout=dropout, seed=seed,
              on_epoch=lambda *_: found.append(verify(nlp, TINY_DATA, min_recall=1.0, round_trip=False).ok))
    return found


PATIENCES = (1, 2, 3, 5, 8)


def stop_at(f: List[float], patience: int) -> tuple:
    """(the best dev F kept, epochs run) when training stops after `patience` epochs without
    an improvement: train()'s rule."""
    best, best_epoch = f[0], 1
    for epoch, score in enumerate(f[1:], 2):
        if epoch - 1 - best_epoch >= patience:
            return best, epoch - 1
        if score > best:
            best, best_epoch = score, epoch
    return best, len(f)


def first_stable(ok: List[bool]) -> tuple:
    """The first epoch all are found, and the epoch from which they stay found (None: never)."""
    first = next((i for i, x in enumerate(ok, 1) if x), None)
    misses = [i for i, x in enumerate(ok, 1) if not x]
    stable = None if not ok or not ok[-1] else (misses[-1] + 1 if misses else 1)
    return first, stable


def main(argv: Optional[Sequence[str]] = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--dropouts", type=float, nargs="+", default=[0.1, 0.2, 0.3, 0.5])
    p.add_argument("--max-epochs", type=int, default=20)
    p.add_argument("--corpora", nargs="+", default=["bc5cdr", "wnut17"])
    p.add_argument("--bc5cdr-limit", type=int, default=500)
    p.add_argument("--bc5cdr-dev-limit", type=int, default=1000)
    p.add_argument("--wnut17-limit", type=int, default=1000)
    p.add_argument("--wnut17-dev-limit", type=int, default=0)
    p.add_argument("--tiny-epochs", type=int, default=100)
    p.add_argument("--tiny-seeds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="150/150 sentences, 2 epochs, 1 tiny seed")
    args = p.parse_args(argv)
    if args.quick:
        args.max_epochs, args.tiny_epochs, args.tiny_seeds = 2, 10, 1
        args.bc5cdr_limit = args.bc5cdr_dev_limit = args.wnut17_limit = args.wnut17_dev_limit = 150
    print(f"bench_defaults: {revision()}; train() from spacy.blank('en'), seed 0; dev F (%) per epoch", flush=True)
    cols = sorted({c for c in COLUMNS if c <= args.max_epochs} | {args.max_epochs})
    res = Results(row_label="dropout")
    curves: Dict[tuple, List[float]] = {}
    for name in args.corpora:
        train, dev, _ = (str(args.data / rel) for rel in CORPORA[name])
        limits = getattr(args, f"{name}_limit"), getattr(args, f"{name}_dev_limit")
        for dropout in args.dropouts:
            r = call("bench_defaults.py:curve", {"train": train, "dev": dev, "train_limit": limits[0],
                                                 "dev_limit": limits[1], "dropout": dropout,
                                                 "epochs": args.max_epochs}).result
            f = curves[(name, dropout)] = r["f"]
            best = max(f)
            print(f"  {name} dropout {dropout}: best dev F {100 * best:.1f} at epoch {f.index(best) + 1}", flush=True)
            res.add(str(dropout), group=f"{name} ({r['n_train']}/{r['n_dev']})", **{
                **{f"e{c}": 100 * f[c - 1] for c in cols}, "best": 100 * best, "@ep": f.index(best) + 1,
                "99%@": next(i for i, x in enumerate(f, 1) if x >= TARGET * best), "s/epoch": r["seconds"] / len(f)})
    print()
    res.print({**{f"e{c}": ".1f" for c in cols}, "best": ".1f", "@ep": "g", "99%@": "g", "s/epoch": ".1f"})
    print("(group: corpus (train/dev sentences); @ep: epoch of the best F; 99%@: first epoch >= 99% of the best; "
          "s/epoch: train()'s update seconds)")

    print("\nRecommendation: median best F over corpora; n_iter for every corpus >= 99% of its best")
    medians, n_iters = {}, {}
    for d in args.dropouts:
        fs = [curves[(name, d)] for name in args.corpora]
        medians[d] = statistics.median(max(f) for f in fs)
        n_iters[d] = max(next(i for i, x in enumerate(f, 1) if x >= TARGET * max(f)) for f in fs)
        print(f"  dropout {d}: median best F {100 * medians[d]:.1f}, n_iter {n_iters[d]}")
    best = max(args.dropouts, key=lambda d: medians[d])
    print(f"  => dropout {best}, n_iter {n_iters[best]} (cap {args.max_epochs})")

    print("\nPatience, read off the same curves: stop after P epochs without a dev improvement; the "
          "model kept is the best epoch so far (dev F % lost against the whole curve's best, epochs run)")
    pat = Results(row_label="patience")
    for (name, dropout), f in curves.items():
        for patience in PATIENCES:
            kept, ran = stop_at(f, patience)
            pat.add(str(patience), group=f"{name} dropout {dropout}",
                    **{"F kept": 100 * kept, "lost": 100 * (max(f) - kept), "epochs": ran})
    pat.print({"F kept": ".1f", "lost": ".1f", "epochs": "g"})

    print(f"\nThe recipe's 2 sentences, {args.tiny_epochs} epochs: first epoch all 3 entities are found / "
          f"stay found from, per seed 0..{args.tiny_seeds - 1}")
    for d in args.dropouts:
        runs = [first_stable(call("bench_defaults.py:tiny", {"dropout": d, "seed": s,
                                                             "epochs": args.tiny_epochs}).result)
                for s in range(args.tiny_seeds)]
        print(f"  dropout {d}: " + "  ".join(f"{a or '-'}/{b or '-'}" for a, b in runs))


if __name__ == "__main__":
    main()
