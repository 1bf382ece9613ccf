"""Benchmark interrupting and resuming `python -m spacy_ner_trainer train` (checkpoints).

On WNUT-17 and BC5CDR (the first --limit training and --dev-limit dev sentences, ../shared/data),
`train TRAIN --dev DEV --output DIR --n-iter N --seed S` runs once uninterrupted (the reference),
then 6 times interrupted at random points of its training (an epoch, and a time into it drawn
uniformly from 5-90% of the reference's epoch time, counted from the run's own previous epoch
end; seeded by --seed) by SIGINT, SIGTERM and kill -9 (two each, shuffled), each
followed by the same command with --resume (or, after a kill -9 before the first checkpoint,
without it, as the error asks). Every run is a fresh process (bench/harness.py). Columns:

  point        where the interrupted run's checkpoint says it stopped (kill -9: the last epoch
               checkpointed), and the seconds after the start the signal was sent
  exit         the interrupted run's exit code, "+line" when it printed the checkpoint and the
               --resume command (SIGINT: 130, SIGTERM: 143; -N: killed by signal N), then the
               resumed run's
  same preds   the resumed model-last's entities on the dev texts equal the reference's
  same bytes   model-last/ner/model, and model-best/ner/model, byte for byte
  extra s      wall and CPU seconds of the interrupted plus the resumed run, minus the reference's

Checkpointing cost: `train()` with a checkpoint directory and without, in alternating fresh
processes (--cost-repeats each), on the same data: the seconds spent inside the checkpoint
saves (timed around each save) as a share of train()'s time, and the process CPU seconds of
the two forms side by side.

Targets (issue #10): every resumed run ends with exactly the reference's model (predictions and
bytes); SIGINT exits 130 and SIGTERM 143, each printing the checkpoint line.

    python bench/bench_resume.py            # ~13 min on a quiet machine (~25 min at load 7 on 2 cores)
    python bench/bench_resume.py --quick    # smoke run: 200/100 sentences, 2 epochs, 2 points
"""
import argparse
import json
import random
import signal
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import spacy
from spacy_ner_trainer import NerCorpus

from harness import (CORPORA, DATA, Measurement, Results, Running, call, check, clock, head_sentences, measure,
                     revision, scratch, start)

SIGNALS = [signal.SIGINT, signal.SIGINT, signal.SIGTERM, signal.SIGTERM, signal.SIGKILL, signal.SIGKILL]


def cli(train: Path, dev: Path, out: Path, args: argparse.Namespace, resume: bool = False) -> List[Any]:
    return [sys.executable, "-m", "spacy_ner_trainer", "train", train, "--dev", dev, "--output", out,
            "--n-iter", args.epochs, "--seed", args.seed, "--quiet"] + (["--resume"] if resume else [])


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def epoch_ends(running: Running, metrics: Path) -> Tuple[Measurement, List[float]]:
    """Wait for a run, noting the seconds after its start at which each epoch's metrics line appeared."""
    ends: List[float] = []
    begun = time.perf_counter()
    while running.running():
        ends += [time.perf_counter() - begun] * (lines(metrics) - len(ends))
        time.sleep(0.05)
    return running.wait(), ends


def checkpoint_position(out: Path) -> str:
    state = out / "checkpoint" / "state.json"
    if not state.exists():
        return "no checkpoint"
    epoch, batch = json.loads(state.read_text())["position"]
    return f"epoch {epoch + 1} batch {batch}" if batch else f"after epoch {epoch}"


def entities(model: Path, texts: List[str]) -> List[List[Tuple[int, int, str]]]:
    nlp = spacy.load(model)
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


def timed_train(train: str, dev: str, epochs: int, seed: int, checkpoint: Optional[str]) -> Dict[str, float]:
    """In a fresh process: train() on the files, with or without checkpoints; the seconds inside the saves."""
    from spacy_ner_trainer import loop, train as train_ner

    saves = {"n": 0, "seconds": 0.0}
    save = loop._Run.save

    def timed_save(self: Any, *a: Any) -> None:
        with clock() as timed:
            save(self, *a)
        saves["n"] += self.checkpoint is not None
        saves["seconds"] += timed.wall

    loop._Run.save = timed_save  # type: ignore[method-assign,assignment]
    with clock() as whole:
        result = train_ner(spacy.blank("en"), train, dev_data=dev, n_iter=epochs, seed=seed,
                           checkpoint=checkpoint)
    return {"train_wall": whole.wall, "train_cpu": whole.cpu, "save_seconds": saves["seconds"],
            "saves": saves["n"], "loop_seconds": result.seconds}


def same_file(a: Path, b: Path) -> str:
    return "yes" if a.exists() and b.exists() and a.read_bytes() == b.read_bytes() else "NO"


def bench_corpus(name: str, args: argparse.Namespace, work: Path, res: Results, cost: Results,
                 rng: random.Random, ok: Dict[str, bool]) -> None:
    train_rel, dev_rel, _ = CORPORA[name]
    train = head_sentences(args.data / train_rel, work / name / "train" / Path(train_rel).name, args.limit)
    dev = head_sentences(args.data / dev_rel, work / name / "dev" / Path(dev_rel).name, args.dev_limit)
    ref_out = work / name / "reference"
    reference, ends = epoch_ends(start(cli(train, dev, ref_out, args)), ref_out / "metrics.jsonl")
    # An epoch, start to end, and when the first began (the run's start-up before it).
    span = (ends[-1] - ends[0]) / (len(ends) - 1) if len(ends) > 1 else ends[0] / 2
    first = max(0.0, ends[0] - span)
    print(f"  {name}: reference {reference.wall:.1f}s, epochs ended at " + ", ".join(f"{t:.1f}s" for t in ends),
          flush=True)
    dev_texts = [eg.reference.text for eg in NerCorpus(dev)(spacy.blank("en"))]
    ref_ents = entities(ref_out / "model-last", dev_texts)
    signals = rng.sample(SIGNALS, len(SIGNALS))[: args.points]
    # A point: an epoch, and a fraction of an epoch's time into it, timed from the run's own
    # previous epoch end (its metrics line), so that a run slower or faster than the reference
    # is still stopped inside that epoch.
    points = sorted((rng.randrange(args.epochs), rng.uniform(0.05, 0.9)) for _ in signals)
    for i, ((epoch, fraction), sig) in enumerate(zip(points, signals)):
        out = work / name / f"point-{i}"
        running = start(cli(train, dev, out, args))
        begun = time.perf_counter()
        while epoch and running.running() and lines(out / "metrics.jsonl") < epoch:
            time.sleep(0.02)
        time.sleep((first if not epoch else 0.0) + fraction * span)
        at = time.perf_counter() - begun
        if running.running():
            running.signal(sig)
        stopped = running.wait(check=False)
        where = checkpoint_position(out)
        line = "checkpoint saved to" in stopped.output and "--resume" in stopped.output
        resumed = measure(cli(train, dev, out, args, resume=where != "no checkpoint"), check=False)
        last = out / "model-last"
        same_preds = "yes" if last.exists() and entities(last, dev_texts) == ref_ents else "NO"
        same_bytes = [same_file(out / m / "ner" / "model", ref_out / m / "ner" / "model")
                      for m in ("model-last", "model-best")]
        expected = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGKILL: -9}[sig]
        row: Dict[str, Union[str, float]] = {
            "signal": signal.Signals(sig).name, "exit": f"{stopped.rc}{'+line' if line else ''} -> {resumed.rc}",
            "same preds": same_preds, "same last bytes": same_bytes[0], "same best bytes": same_bytes[1],
            "extra wall s": stopped.wall + resumed.wall - reference.wall,
            "extra cpu s": stopped.cpu + resumed.cpu - reference.cpu}
        res.add(f"{where} ({at:.1f}s)", group=name, **row)
        ok["same"] &= same_preds == "yes" and same_bytes == ["yes", "yes"] and resumed.rc == 0
        ok["exit"] &= stopped.rc == expected and (line or sig == signal.SIGKILL)
        print(f"  {name} point {i}: {signal.Signals(sig).name} at {at:.1f}s, {where}, exit {stopped.rc} -> "
              f"{resumed.rc}, same predictions {same_preds}, same bytes {'/'.join(same_bytes)}", flush=True)
    for repeat in range(args.cost_repeats):
        for form in (["with checkpoints", "without"] if repeat % 2 == 0 else ["without", "with checkpoints"]):
            checkpoint = str(work / name / f"cost-{repeat}") if form == "with checkpoints" else None
            m = call("bench_resume.py:timed_train", {"train": str(train), "dev": str(dev), "epochs": args.epochs,
                                                     "seed": args.seed, "checkpoint": checkpoint})
            r = m.result
            values: Dict[str, float] = {
                "train() s": r["train_wall"], "saves": r["saves"], "in saves s": r["save_seconds"],
                "% of train()": 100 * r["save_seconds"] / r["train_wall"], "process cpu s": m.cpu}
            cost.add(form, group=name, pair=repeat, **values)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--corpora", default="wnut17,bc5cdr")
    p.add_argument("--limit", type=int, default=1500, help="training sentences (0: all)")
    p.add_argument("--dev-limit", type=int, default=500, help="dev sentences (0: all)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0, help="the training seed, and the points' draw")
    p.add_argument("--points", type=int, default=len(SIGNALS), help="interruptions per corpus (at most 6)")
    p.add_argument("--cost-repeats", type=int, default=2, help="runs of train() with and without checkpoints")
    p.add_argument("--quick", action="store_true", help="200/100 sentences, 2 epochs, 2 points, 1 cost run each")
    p.add_argument("--keep", action="store_true")
    args = p.parse_args(argv)
    if args.quick:
        args.limit, args.dev_limit, args.epochs, args.points, args.cost_repeats = 200, 100, 2, 2, 1
    print(f"bench_resume: {revision()}; {args.epochs} epochs, seed {args.seed}, first {args.limit or 'all'} "
          f"training / {args.dev_limit or 'all'} dev sentences", flush=True)
    res = Results(row_label="point")
    cost = Results(baseline="without", ratio_label="x without", row_label="train()")
    rng = random.Random(args.seed)
    ok = {"same": True, "exit": True}
    with scratch("bench_resume_", args.keep) as work:
        for name in args.corpora.split(","):
            bench_corpus(name, args, work, res, cost, rng, ok)
    print()
    res.print({"signal": "", "exit": "", "same preds": "", "same last bytes": "", "same best bytes": "",
               "extra wall s": "+.1f", "extra cpu s": "+.1f"})
    print("\nCheckpointing cost (medians)")
    cost.print({"train() s": ".1f", "saves": "g", "in saves s": ".2f", "% of train()": ".2f", "process cpu s": ".1f"},
               ratios=["process cpu s"])
    print()
    check(ok["same"], "every resumed run ends with the reference's model-last and model-best (predictions, bytes)")
    check(ok["exit"], "SIGINT exits 130 and SIGTERM 143, each printing the checkpoint and the resume command")
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
