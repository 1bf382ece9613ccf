"""Benchmark corpora larger than memory: peak RSS and training words/s at 1x, 10x and 50x of WNUT-17 train.

What it measures (issue #16)
----------------------------
The corpus at scale S is WNUT-17 train (../shared/data, 3,394 sentences) written S times to one
file in a temp dir. Each copy k ends every sentence with one extra token "c<k>" (tag O), so that
no two sentences of the file are the same: verbatim copies would hide what any cache keyed
by text (rehearsal once kept one) costs on a real corpus (--plain writes verbatim copies). Every scale, 1x included, has the extra token.

Routes, each run in a fresh process (bench/harness.py: peak RSS of that process alone):

  cli           python -m spacy_ner_trainer train FILE --output DIR --n-iter 1 --buffer-size 10000
                (run by the package's CLI entry point, spacy_ner_trainer.cli.main, with that argv,
                in a harness process that also runs the watcher thread described below)
  cli+rehearse  the same with --model BASE --rehearse
  api           train(spacy.blank("en"), NerCorpus(FILE), n_iter=1, buffer_size=10000, checkpoint=DIR)
  api+rehearse  the same on spacy.load(BASE), rehearse=True
  spacy train   the row to beat: `spacy init config -p ner` (efficiency) with its own defaults and
                max_epochs = 1, on `spacy convert -c ner -n 1` output of FILE read by spacy.Corpus.v1
                (dev: 100 sentences of WNUT-17 dev, also converted)

BASE is a small ner pipeline that knows other labels: the CLI trained on the first 1,000
sentences of BC5CDR train (Chemical, Disease) for 3 epochs, without --dev. With --model BASE
the WNUT labels are new and, with --rehearse (train the ner itself, rehearsing; the default
would keep BASE's ner and train a copy), Chemical and Disease are rehearsed: each batch of
training texts is predicted by BASE's ner (the copy nlp.resume_training() keeps) as the epoch
reads it, and its Chemical/Disease predictions fill the gold wherever they overlap no WNUT span;
nothing is kept between epochs.

Bounded runs. A full epoch at 50x (3.3M words) takes about 12 minutes a route on one core, so
at the scales above --full-up-to (default: 10x and 50x) each run is bounded:

  ours          the process reads the whole corpus before training (the label pass), then trains until the training pass has
                read as many bytes of the file as the shuffle buffer plus --bound examples take
                (default twice the 1x corpus, 6,788), and is then stopped with SIGINT: train()
                finishes the batch, saves its checkpoint and exits (the CLI with exit code 130).
                A thread in the process sends the SIGINT: it knows train() is in its training
                loop while the SIGTERM handler is the loop's own (a function of
                spacy_ner_trainer.loop), and reads the file offset from /proc/self/fdinfo. The
                words and seconds are train()'s own counters, from its checkpoint
                (checkpoint.load_checkpoint) or TrainingInterrupted.result.
  cli, bounded  the CLI's work after training (saving, and verification on a seeded sample of
                2000 training examples drawn in one more pass over the whole corpus) is measured
                by a second process, the same command with --n-iter 0 ("tail"); the route's
                peak RSS is the larger of the two.
  spacy train   max_steps set so that its batches (compounding 100 -> 1000 words) reach about
                as many words as ours train, with eval_frequency = max_steps; spaCy reads the whole
                converted corpus into a list before the first step whatever max_steps is.

Columns (medians over --repeats; "x 1x": the median of per-repeat ratios to the route's 1x run):

  rss       peak RSS of the process, MB (bounded cli: the larger of the training and tail processes)
  wps       training words / wall seconds of the training loop. Ours: train()'s own figure (the
            epoch's nlp.update loop, including reading the stream and filling the buffer, which
            a bounded run charges to fewer words than a full epoch: a few percent). spacy train:
            from the end of step 0 (after its step-0 evaluation) to the end of the loop (full
            epoch) or to the last step (bounded, its evaluation on 100 dev sentences included);
            spaCy's reading and shuffling of the corpus, done before step 0, is left out.
  cpu_wps   the same words / CPU seconds. Ours: the process's CPU seconds while train()'s
            training-loop handler is set (the watcher thread looks every 50 ms; bounded: up to
            the SIGINT); spacy train: process_time() at the same marks as wps. On a shared
            machine this is the steadier figure.
  words     training words in that time; wall: the process's wall seconds; tail: the CLI's
            --n-iter 0 process, peak RSS MB; trained: "epoch" or "bounded".

Targets: at the largest scale, on every route, peak RSS <= 1.2x the 1x run, and words/s (wall,
and CPU) >= 0.9x.

Run (from the repository root; Linux only: the bounded runs are followed through /proc):

    python bench/bench_scale.py --core 0    # full run: about 35 min on an idle core (spacy convert
                                            # at 50x ~100 s CPU; ~4,500 training words/s)
    python bench/bench_scale.py --quick     # smoke run: 600 sentences at 1x and 3x, buffer 200, ~5 min
"""
import argparse
import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `spacy train --code` imports this file

import srsly  # noqa: E402
from spacy.util import registry  # noqa: E402

from bench_train import corpus_v1, efficiency_config, spacy_convert  # noqa: E402
from harness import (CORPORA, DATA, Results, call, check, head_sentences, measure, revision, rotate,  # noqa: E402
                     scratch)

ROUTES = ["cli", "cli+rehearse", "api", "api+rehearse", "spacy train"]
RSS_TARGET = 1.2
WPS_TARGET = 0.9
BASE_SENTENCES, BASE_EPOCHS = 1000, 3
DEV_LIMIT = 100
EVAL_NEVER = 10**9  # eval_frequency: step 0 only
POLL = 0.05  # seconds between looks at a process in training


# spaCy's route: a logger that notes the time and words of every evaluated step


@registry.loggers("bench_scale.StepTimer.v1")
def step_timer(output_file: str) -> Callable:
    """spaCy's console logger, plus (time, words) at each evaluated step and the loop's end."""
    console = registry.get("loggers", "spacy.ConsoleLogger.v1")(progress_bar=False)

    def setup(nlp: Any, stdout: Any = sys.stdout, stderr: Any = sys.stderr) -> Tuple[Callable, Callable]:
        log_step, finalize = console(nlp, stdout, stderr)
        marks: List[Tuple[float, float, int]] = []

        def step(info: Optional[Dict[str, Any]]) -> None:
            log_step(info)
            if info is not None:
                marks.append((time.perf_counter(), time.process_time(), info["words"]))

        def done() -> None:
            finalize()
            end = [time.perf_counter(), time.process_time()]
            Path(output_file).write_text(json.dumps({"marks": marks, "end": end}))

        return step, done

    return setup


def spacy_steps(words: float, size: Dict[str, Any]) -> int:
    """Steps of spaCy's compounding batch_by_words schedule that reach `words` words."""
    start, stop, compound = size["start"], size["stop"], size["compound"]
    steps, total, current = 0, 0.0, float(start)
    while total < words:
        total += current
        current = min(stop, current * compound)
        steps += 1
    return steps


# Corpora


def write_scaled(source: Path, target: Path, copies: int, distinct: bool) -> Tuple[int, int]:
    """`copies` copies of a CoNLL file's sentences in one file; with `distinct`, copy k ends each
    sentence with a token "c<k>" tagged O. Returns (sentences, tokens) of the new file."""
    sentences: List[List[str]] = [[]]
    with source.open(encoding="utf8") as lines:
        for line in lines:
            sentences[-1].append(line)
            if not line.strip():
                sentences.append([])
    if not sentences[-1]:
        sentences.pop()
    n_sent = n_tok = 0
    with target.open("w", encoding="utf8") as out:
        for k in range(copies):
            for lines_ in sentences:
                body = [line for line in lines_ if line.strip()]
                if not body:
                    continue
                out.writelines(body + ([f"c{k}\tO\n"] if distinct else []))
                out.write(lines_[-1] if not lines_[-1].strip() else "\n")
                n_sent += 1
                n_tok += len(body) + distinct
    return n_sent, n_tok


# Our routes, each in its own process with a thread that follows train()'s training loop


def _read_offset(path: str) -> int:
    """How far this process has read `path`: the largest offset among its open descriptors of it."""
    offsets = [0]
    for fd in Path("/proc/self/fd").iterdir():
        try:
            if str(fd.readlink()) == path:
                info = Path(f"/proc/self/fdinfo/{fd.name}").read_text()
                offsets.append(int(info.split("pos:")[1].split()[0]))
        except (OSError, IndexError):
            continue  # closed meanwhile
    return max(offsets)


class TrainingWatch(threading.Thread):
    """Notes the CPU and wall seconds this process spends in train()'s training loop, which is
    while the loop's SIGINT/SIGTERM handler (defined in spacy_ner_trainer.loop) is set; with an
    `offset`, sends this process SIGINT once the training pass has read `path` past it, and the
    window ends there."""

    def __init__(self, path: str, offset: Optional[int]):
        super().__init__(daemon=True)
        self.path, self.offset = str(Path(path).resolve()), offset
        self.cpu: Optional[float] = None
        self.wall: Optional[float] = None
        self.sent = False

    def run(self) -> None:
        began: Optional[Tuple[float, float]] = None
        while True:
            training = getattr(signal.getsignal(signal.SIGTERM), "__module__", None) == "spacy_ner_trainer.loop"
            if training and began is None:
                began = (time.process_time(), time.perf_counter())
            stop = training and self.offset is not None and _read_offset(self.path) >= self.offset
            if began is not None and (stop or not training):
                self.cpu, self.wall = time.process_time() - began[0], time.perf_counter() - began[1]
                if stop:
                    self.sent = True
                    os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(POLL)

    def result(self) -> Dict[str, Any]:
        return {"cpu": self.cpu, "wall": self.wall, "sent": self.sent}


def checkpoint_progress(path: Path) -> Tuple[int, float]:
    """train()'s words and seconds so far, from the checkpoint it saved (read by the package's
    own loader, given the checkpoint's own fingerprint)."""
    from spacy_ner_trainer.checkpoint import STATE_FILE, load_checkpoint

    state = load_checkpoint(path, srsly.read_json(path / STATE_FILE)["fingerprint"])
    return state.progress["n_words"], state.progress["seconds"]


def train_cli(argv: List[str], path: str, offset: Optional[int], checkpoint: str) -> Dict[str, Any]:
    """The CLI route, in its own process: `python -m spacy_ner_trainer ARGV`, as its __main__ runs it."""
    from spacy_ner_trainer.cli import main as cli_main

    watch = TrainingWatch(path, offset)
    watch.start()
    sys.argv = ["python -m spacy_ner_trainer", *argv]
    try:
        cli_main()
        rc = 0
    except SystemExit as exit_:
        rc = exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    watch.join(1.0)
    words, seconds = checkpoint_progress(Path(checkpoint)) if Path(checkpoint).exists() else (0, 0.0)
    return {"rc": rc, "words": words, "seconds": seconds, **watch.result()}


def train_api(path: str, buffer_size: int, model: Optional[str], rehearse: bool, offset: Optional[int],
              checkpoint: str) -> Dict[str, Any]:
    """The API route, in its own process: train() for one epoch; SIGINT stops it with a checkpoint."""
    import spacy
    from spacy_ner_trainer import NerCorpus, train
    from spacy_ner_trainer.loop import TrainingInterrupted

    nlp = spacy.load(model) if model else spacy.blank("en")
    watch = TrainingWatch(path, offset)
    watch.start()
    try:
        result = train(nlp, NerCorpus(path), n_iter=1, buffer_size=buffer_size, rehearse=rehearse,
                       checkpoint=checkpoint)
    except TrainingInterrupted as interrupted:
        result = interrupted.result
    watch.join(1.0)  # it notes the loop's end within a poll: train() may return sooner
    return {"rc": 0, "words": result.n_words, "seconds": result.seconds, **watch.result()}


def run_ours(route: str, corpus: Dict[str, Any], prep: Dict[str, Any], args: argparse.Namespace,
             rdir: Path, bounded: bool) -> Dict[str, Any]:
    rehearse = route.endswith("+rehearse")
    path, out = str(corpus["path"]), rdir / "out"
    # Bytes that the buffer plus the bound take: the training pass has read them by then.
    offset = int((args.buffer_size + prep["bound"]) * corpus["bytes"] / corpus["sentences"]) if bounded else None

    def cli_args(output: Path, n_iter: int) -> List[str]:
        base = ["--model", str(prep["base"]), "--rehearse"] if rehearse else []
        return ["train", path, "--output", str(output), "--n-iter", str(n_iter), "--buffer-size",
                str(args.buffer_size), "--quiet", *base]

    if route.startswith("cli"):
        m = call("bench_scale.py:train_cli", {"argv": cli_args(out, 1), "path": path, "offset": offset,
                                               "checkpoint": str(out / "checkpoint")}, core=args.core, check=False)
    else:
        m = call("bench_scale.py:train_api", {
            "path": path, "buffer_size": args.buffer_size, "model": str(prep["base"]) if rehearse else None,
            "rehearse": rehearse, "offset": offset, "checkpoint": str(out / "checkpoint")}, core=args.core, check=False)
    got = m.result
    # The CLI exits 130 when interrupted, else 0, or 1 when a verification check fails.
    expected = (0,) if route.startswith("api") else (130,) if got and got["sent"] else (0, 1)
    if m.rc != 0 or got is None or got["rc"] not in expected:
        raise RuntimeError(f"{route} at {corpus['name']} exited {m.rc}, {got}:\n{m.output[-3000:]}")
    if got["cpu"] is None or not got["words"]:
        raise RuntimeError(f"{route} at {corpus['name']}: no training loop seen, or no checkpoint:\n{m.output[-3000:]}")
    if bounded and not got["sent"]:
        print(f"  note: {route} at {corpus['name']} finished its epoch before the bound was reached")
    row = {"rss": m.rss_mb, "wps": got["words"] / got["seconds"], "cpu_wps": got["words"] / got["cpu"],
           "words": got["words"], "wall": m.wall, "trained": "bounded" if got["sent"] else "epoch"}
    if route.startswith("cli") and got["sent"]:
        # The CLI's work after training, over the whole corpus: the same command, no epochs.
        tail = measure([sys.executable, "-m", "spacy_ner_trainer", *cli_args(rdir / "tail", 0)], core=args.core,
                       check=False)
        if tail.rc not in (0, 1) or "examples sampled" not in tail.output:
            raise RuntimeError(f"{route} --n-iter 0 exited {tail.rc}:\n{tail.output[-3000:]}")
        row.update(tail=tail.rss_mb, rss=max(m.rss_mb, tail.rss_mb))
    return row


def run_spacy(corpus: Dict[str, Any], prep: Dict[str, Any], args: argparse.Namespace, rdir: Path,
              bounded: bool) -> Dict[str, Any]:
    timing = rdir / "timing.json"
    config = efficiency_config()
    config["corpora"] = {"train": corpus_v1(corpus["docbin"]), "dev": corpus_v1(prep["dev_docbin"], DEV_LIMIT)}
    config["training"]["max_epochs"] = 1
    config["training"]["eval_frequency"] = EVAL_NEVER
    config["training"]["logger"] = {"@loggers": "bench_scale.StepTimer.v1", "output_file": str(timing)}
    if bounded:
        steps = spacy_steps(prep["bound"] * prep["spacy_words"] / prep["sentences"],
                            config["training"]["batcher"]["size"])
        config["training"].update({"max_steps": steps, "eval_frequency": steps})
    config.to_disk(rdir / "config.cfg")
    m = measure([sys.executable, "-m", "spacy", "train", rdir / "config.cfg", "--output", rdir / "out",
                 "--code", Path(__file__).resolve()], core=args.core)
    times = json.loads(timing.read_text())
    (t0, c0, w0), (t1, c1, w1) = times["marks"][0], times["marks"][-1]
    if bounded:
        words = w1 - w0
    else:
        (t1, c1), words = times["end"], corpus["scale"] * prep["spacy_words"] - w0
    return {"rss": m.rss_mb, "wps": words / (t1 - t0), "cpu_wps": words / (c1 - c0), "words": words,
            "wall": m.wall, "trained": "bounded" if bounded else "epoch"}


# Preparation


def prepare(args: argparse.Namespace, work: Path) -> Dict[str, Any]:
    import spacy
    from spacy.training import Corpus

    train, dev, _ = (args.data / rel for rel in CORPORA["wnut17"])
    one = work / "wnut-1x-source.conll"
    head_sentences(train, one, args.sentences)
    corpora = []
    for scale in args.scales:
        path = work / f"wnut-{scale}x.conll"
        sentences, tokens = write_scaled(one, path, scale, not args.plain)
        began = time.perf_counter()
        docbin = spacy_convert(path, work / f"convert-{scale}x")
        corpora.append({"name": f"{scale}x", "scale": scale, "path": path, "sentences": sentences,
                        "tokens": tokens, "bytes": path.stat().st_size, "docbin": docbin})
        print(f"{scale}x: {sentences:,} sentences, {tokens:,} tokens, {path.stat().st_size / 2**20:.1f} MB "
              f"(spacy convert {time.perf_counter() - began:.0f} s)")
    dev_docbin = spacy_convert(dev, work / "convert-dev")
    # spaCy's words per 1x corpus: its tokenizer's, on the converted texts.
    spacy_words = sum(len(eg) for eg in Corpus(corpora[0]["docbin"])(spacy.blank("en"))) // args.scales[0]
    base_data = head_sentences(args.data / CORPORA["bc5cdr"][0], work / "bc5cdr-head.tsv", args.base_sentences)
    began = time.perf_counter()
    base = measure([sys.executable, "-m", "spacy_ner_trainer", "train", base_data, "--output", work / "base",
                    "--n-iter", args.base_epochs, "--quiet"], check=False)
    if not (work / "base" / "model-last").exists():
        raise RuntimeError(f"the base model was not trained:\n{base.output[-3000:]}")
    print(f"base: BC5CDR train, {args.base_sentences} sentences, {args.base_epochs} epochs "
          f"({time.perf_counter() - began:.0f} s)")
    sentences = corpora[0]["sentences"] // args.scales[0]
    return {"corpora": corpora, "dev_docbin": dev_docbin, "base": work / "base" / "model-last",
            "spacy_words": spacy_words, "sentences": sentences, "bound": args.bound or 2 * sentences}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--scales", default="1,10,50", help="copies of the corpus, the first one the baseline")
    parser.add_argument("--sentences", type=int, default=0, help="sentences of WNUT-17 train in 1x (0: all)")
    parser.add_argument("--buffer-size", type=int, default=10000)
    parser.add_argument("--full-up-to", type=int, default=1, help="larger scales are bounded runs")
    parser.add_argument("--bound", type=int, default=0, help="examples a bounded run trains (0: twice the 1x corpus)")
    parser.add_argument("--routes", default=",".join(ROUTES))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--core", type=int, default=None, help="pin every measured process to this CPU core")
    parser.add_argument("--plain", action="store_true", help="verbatim copies (no per-copy token)")
    parser.add_argument("--base-sentences", type=int, default=BASE_SENTENCES)
    parser.add_argument("--base-epochs", type=int, default=BASE_EPOCHS)
    parser.add_argument("--keep", action="store_true", help="keep the temp dir")
    parser.add_argument("--quick", action="store_true", help="smoke run: 600 sentences, 1x and 3x, buffer 200")
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences, args.scales, args.buffer_size, args.bound = 600, "1,3", 200, 600
        args.base_sentences, args.base_epochs = 200, 1
    args.scales = [int(s) for s in args.scales.split(",")]
    routes = [r for r in args.routes.split(",") if r]
    unknown = set(routes) - set(ROUTES)
    if unknown:
        parser.error(f"unknown routes {sorted(unknown)}; choose from {ROUTES}")
    began = time.perf_counter()
    print(revision())
    res = Results(baseline=f"{args.scales[0]}x", ratio_label=f"x {args.scales[0]}x", row_label="scale")
    with scratch("bench_scale_", keep=args.keep) as work:
        prep = prepare(args, work)
        for repeat in range(args.repeats):
            for corpus in prep["corpora"]:
                bounded = corpus["scale"] > args.full_up_to
                for route in rotate(routes, repeat):
                    rdir = work / f"run-{repeat}-{corpus['name']}-{route.replace(' ', '_')}"
                    rdir.mkdir()
                    if route == "spacy train":
                        row = run_spacy(corpus, prep, args, rdir, bounded)
                    else:
                        row = run_ours(route, corpus, prep, args, rdir, bounded)
                    res.add(corpus["name"], group=route, pair=repeat, **row)
                    print(f"  {route:13} {corpus['name']:>4}  RSS {row['rss']:7.1f} MB  {row['wps']:7,.0f} words/s  "
                          f"{row['cpu_wps']:7,.0f} CPU words/s  {row['words']:9,.0f} words  {row['wall']:6.1f} s  "
                          f"{row['trained']}", flush=True)
    print()
    res.print({"rss": ",.1f", "wps": ",.0f", "cpu_wps": ",.0f", "words": ",.0f", "wall": ".0f", "tail": ",.1f",
               "trained": ""}, ratios=["rss", "wps", "cpu_wps"])
    copies = "verbatim copies" if args.plain else "each sentence +1 token, c<copy>"
    print(f"{res.baseline} = {prep['sentences']:,} sentences of WNUT-17 train ({copies}); buffer {args.buffer_size:,}. "
          f"Scales above {args.full_up_to}x are bounded: ours read the whole corpus (labels), then train until the buffer plus {prep['bound']:,} examples are read and stop on SIGINT "
          f"(cli: + a --n-iter 0 process for saving and verification, 'tail'); spacy train stops at max_steps "
          f"(about as many words). wps/cpu_wps: training-loop words per wall/CPU second (docstring).")
    top = f"{args.scales[-1]}x"
    ok = True
    for route in routes:
        rss = res.ratio(top, "rss", group=route)
        ok &= check(rss is not None and rss <= RSS_TARGET,
                    f"{route}: peak RSS at {top} {rss or 0:.2f}x that at {res.baseline} (<= {RSS_TARGET})")
        for metric, name in (("wps", "words/s"), ("cpu_wps", "CPU words/s")):
            wps = res.ratio(top, metric, group=route)
            ok &= check(wps is not None and wps >= WPS_TARGET,
                        f"{route}: {name} at {top} {wps or 0:.2f}x that at {res.baseline} (>= {WPS_TARGET})")
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
