"""Benchmark model-best at equal CPU seconds: `spacy_ner_trainer train` vs `spacy train`.

On wnut17, ncbi-disease and bc5cdr (train, dev, test from ../shared/data), per seed (--seeds):

  spacy train   the `spacy init config -p ner -o efficiency` config as it is (dropout 0.1,
                batch_by_words, eval every 200 steps, model-best by dev ents_f) but for
                max_epochs = --epochs and the seed, on `spacy convert -c ner -n 1` output read by
                spacy.Corpus.v1 (bench_train's (a): TAB-only lines made empty first)
  ours          `python -m spacy_ner_trainer train TRAIN --dev DEV --output DIR --n-iter N --seed S`
                with its defaults otherwise; model-best and model-last

N is set once per corpus so that ours uses no more CPU seconds than spacy train: a calibration
run (seed 0, no epoch limit) is watched, and N is the number of epochs it finished within the
median CPU seconds of the spacy train runs, then one less while ours' seed-0 run (which also
saves and verifies) takes more CPU seconds than that median. Every run
is a fresh process (bench/harness.py); CPU seconds are the process's user + sys, start to exit.
Test P/R/F (%, medians over seeds) on the test file, scored the same way for every model.

Target: our model-best's test F >= spacy train's + 0.5 on every corpus, at <= its CPU seconds.

    python bench/bench_best.py            # 3 seeds, 10 epochs: ~95 min on a quiet 2-core machine
    python bench/bench_best.py --core 1   # every run pinned to core 1: steadier CPU seconds
    python bench/bench_best.py --quick    # smoke run: 300/100/300 sentences, 2 epochs, 1 seed
    python bench/bench_best.py --ours-args=--average   # also ours with --average, rows of their own
"""
import argparse
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

from bench_train import corpus_v1, efficiency_config, spacy_convert, test_scores
from harness import CORPORA, DATA, Results, check, head_sentences, measure, revision, scratch, start

TARGET_F = 0.5
SPACY, BEST, LAST = "spacy train model-best", "ours model-best", "ours model-last"


def ours(train: Path, dev: Path, out: Path, n_iter: int, seed: int, extra: str = "") -> List[Any]:
    return [sys.executable, "-m", "spacy_ner_trainer", "train", train, "--dev", dev, "--output", out,
            "--n-iter", n_iter, "--seed", seed, "--quiet", *extra.split()]


def rows(extra: str) -> Tuple[str, str]:
    """The model-best and model-last rows of ours run with the options `extra` ("": defaults)."""
    return (BEST, LAST) if not extra else (f"ours {extra} model-best", f"ours {extra} model-last")


def calibrate(train: Path, dev: Path, out: Path, budget: float, core: Optional[int]) -> int:
    """Epochs of ours that finish within `budget` CPU seconds; from a watched seed-0 run."""
    running = start(ours(train, dev, out, 10_000, 0), core=core)
    ends: List[float] = []
    metrics = out / "metrics.jsonl"
    while running.running():
        cpu = running.cpu_so_far()
        done = len(metrics.read_text().splitlines()) if metrics.exists() else 0
        ends += [cpu] * (done - len(ends))
        if cpu > budget:
            break
        time.sleep(0.1)
    if running.running():
        running.signal(signal.SIGKILL)
    running.wait(check=False)
    if len(ends) >= 2 and ends[-1] <= budget:  # it stopped by itself (patience): extrapolate
        step = (ends[-1] - ends[0]) / (len(ends) - 1)
        ends += [ends[-1] + step * i for i in range(1, int((budget - ends[-1]) / step) + 2)]
    return max(1, sum(cpu <= budget for cpu in ends))


def bench_corpus(name: str, args: argparse.Namespace, work: Path, res: Results) -> None:
    limits = (args.limit, args.dev_limit, args.test_limit)
    train, dev, test = (head_sentences(args.data / rel, work / name / split / Path(rel).name, n)
                        for rel, split, n in zip(CORPORA[name], ("train", "dev", "test"), limits))
    config = efficiency_config()
    config["corpora"] = {"train": corpus_v1(spacy_convert(train, work / name / "a-train")),
                         "dev": corpus_v1(spacy_convert(dev, work / name / "a-dev"))}
    config["training"]["max_epochs"] = args.epochs
    cpu = []
    for seed in range(args.seeds):
        config["training"]["seed"] = seed
        config.to_disk(work / name / f"spacy-{seed}.cfg")
        m = measure([sys.executable, "-m", "spacy", "train", work / name / f"spacy-{seed}.cfg",
                     "--output", work / name / f"spacy-{seed}"], core=args.core)
        scores = test_scores(work / name / f"spacy-{seed}" / "model-best", test, 0)
        res.add(SPACY, group=name, pair=seed, **{"cpu s": m.cpu, "wall s": m.wall, "epochs": args.epochs, **scores})
        cpu.append(m.cpu)
        print(f"  {name} spacy train seed {seed}: {m.cpu:.0f} CPU s, test F {scores['F']:.1f}", flush=True)
    budget = statistics.median(cpu)
    calibrated = args.n_iter or calibrate(train, dev, work / name / "calibration", budget, args.core)
    for variant, extra in enumerate(["", *args.ours_args]):
        bench_ours(name, args, work, res, (train, dev, test), budget, calibrated, variant, extra)


def bench_ours(name: str, args: argparse.Namespace, work: Path, res: Results, paths: Tuple[Path, Path, Path],
               budget: float, n_iter: int, variant: int, extra: str) -> None:
    """Ours with the options `extra`, every seed, at `n_iter` epochs or one less while seed 0
    takes more CPU seconds than `budget`."""
    train, dev, test = paths
    best_row, last_row = rows(extra)
    for seed in range(args.seeds):
        out = work / name / f"ours-{variant}-{seed}"
        while True:
            m = measure(ours(train, dev, out, n_iter, seed, extra), check=False, core=args.core)
            if m.rc not in (0, 1):  # 1: a verification check failed; the models are saved all the same
                raise RuntimeError(f"ours exited {m.rc}:\n{m.output[-3000:]}")
            if seed or args.n_iter or m.cpu <= budget or n_iter == 1:
                break
            print(f"  {name} ours {extra} seed 0: {m.cpu:.1f} CPU s > {budget:.1f} with --n-iter {n_iter}: one less",
                  flush=True)
            n_iter -= 1
            shutil.rmtree(out)
        epochs = len((out / "metrics.jsonl").read_text().splitlines())
        for row, model in ((best_row, "model-best"), (last_row, "model-last")):
            scores = test_scores(out / model, test, 0)
            res.add(row, group=name, pair=seed, **{"cpu s": m.cpu, "wall s": m.wall, "epochs": epochs, **scores})
        print(f"  {name} ours {extra} seed {seed}: --n-iter {n_iter}, {epochs} epochs, {m.cpu:.0f} CPU s, "
              f"test F best {res.values(best_row, 'F', name)[-1]:.1f} last {scores['F']:.1f}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--corpora", default=",".join(CORPORA))
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1")
    p.add_argument("--epochs", type=int, default=10, help="spacy train's max_epochs")
    p.add_argument("--n-iter", type=int, default=0, help="ours' --n-iter (0: calibrated to spacy train's CPU seconds)")
    p.add_argument("--limit", type=int, default=0, help="training sentences (0: all)")
    p.add_argument("--dev-limit", type=int, default=0, help="dev sentences (0: all)")
    p.add_argument("--test-limit", type=int, default=0, help="test sentences (0: all)")
    p.add_argument("--core", type=int, default=None, help="pin every run to this CPU core (taskset)")
    p.add_argument("--quick", action="store_true", help="300/100/300 sentences, 2 epochs, 1 seed")
    p.add_argument("--ours-args", action="append", default=[],
                   help="also run ours with these options (rows of their own), e.g. --ours-args=--average")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.limit, args.dev_limit, args.test_limit, args.epochs, args.seeds = 300, 100, 300, 2, 1
    print(f"bench_best: {revision()}; {args.seeds} seeds, spacy train {args.epochs} epochs, limits "
          f"{args.limit or 'all'}/{args.dev_limit or 'all'}/{args.test_limit or 'all'}"
          + "".join(f"; also ours {extra}" for extra in args.ours_args), flush=True)
    res = Results(baseline=SPACY, ratio_label="x spacy")
    with scratch("bench_best_", args.keep) as work:
        for name in args.corpora.split(","):
            bench_corpus(name, args, work, res)
    print()
    res.print({"epochs": "g", "cpu s": ".0f", "wall s": ".0f", "P": ".1f", "R": ".1f", "F": ".1f"}, ratios=["cpu s"])
    print("(medians over seeds; test P/R/F in %; cpu s: the whole process; x spacy: per-seed ratios)\n")
    ok = True
    for extra in ["", *args.ours_args]:
        best_row, last_row = rows(extra)
        if extra:
            print(f"\n  with {extra} (not the defaults):")
        for name in args.corpora.split(","):
            ours_f, spacy_f = res.median(best_row, "F", name) or 0.0, res.median(SPACY, "F", name) or 0.0
            ours_cpu, spacy_cpu = res.median(best_row, "cpu s", name) or 0.0, res.median(SPACY, "cpu s", name) or 0.0
            passed = check(ours_f >= spacy_f + TARGET_F and ours_cpu <= spacy_cpu,
                           f"{name}: our model-best F {ours_f:.1f} vs spacy train's {spacy_f:.1f} (+{TARGET_F} "
                           f"needed: {ours_f - spacy_f:+.1f}), CPU {ours_cpu:.1f}s vs {spacy_cpu:.1f}s")
            ok &= passed or bool(extra)
            print("        test F per seed: " + "; ".join(
                f"{row} " + "/".join(f"{f:.1f}" for f in res.values(row, "F", name))
                for row in (SPACY, best_row, last_row)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
