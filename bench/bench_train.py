"""Benchmark training with spacy-ner-trainer against spaCy's own route and the seed loop.

What it measures
----------------
On wnut17 and bc5cdr (train -> test, from ../shared/data), in one run, with one model
architecture (the `ner` of `spacy init config -p ner -o efficiency`: a MultiHashEmbed +
MaxoutWindowEncoder tok2vec feeding TransitionBasedParser.v2), the same number of epochs,
the same dropout and the same batch-size schedule (compounding 4 -> 32 x1.001, in examples):

  (a)  `python -m spacy train` on `spacy convert -c ner -n 1` output read by spacy.Corpus.v1,
       with [training.batcher] = spacy.batch_by_sequence.v1 on that schedule
  (b)  `python -m spacy train` with this package's reader (NerCorpus.v1 on the raw file),
       labels (ner_labels.v1), batcher (shuffled_batches.v1) and callback (verify.v1)
  (b0) (b) without the verify.v1 callback, to price the callback
  (c)  `spacy_ner_trainer.train()` in a Python process, on the same (untrained) pipeline
  (d)  the seed loop, `python ../shared/reference/seed_loop_v3.py TRAIN.jsonl N MODEL OUT`

Every method runs in its own subprocess, one after another (never in parallel), interleaved
across --repeats in an order that rotates every repeat; the table shows medians. With --paired,
(a) instead runs at the same time as each other method, each pinned to its own CPU core
(swapped every pair), so that both see the same machine; x(a) of words/s is then the median of
those pairs' ratios, which takes out the drift of a shared machine's speed over minutes. For
each it reports:

  w/s        training words / wall seconds of the training loop. (a)/(b): from the logger's
             setup to its finalize (reading the corpus once, the step-0 evaluation on the dev
             slice and the checkpoint saved after it included; initialization and the final
             model-last save not); (c): the whole `train()` call (reading, alignment, labels,
             initialization, updates); (d): the seed loop's own `train_seconds` (its
             initialization and updates; reading the JSONL not). The issue's metric.
  cpu w/s    training words / CPU seconds (user+sys) of that same loop ((a), (b), (c)): on a
             machine shared with other jobs, wall time mostly measures the others.
  proc cpu   training words / CPU seconds of the whole process, imports included: the one
             CPU figure (d) has, with the same definition for every method.
  wall s     the whole process, start to exit.
  P/R/F      the saved pipeline on the test file, scored by spaCy's Scorer
             (`nlp.evaluate` on Examples over the file's own tokens, read by NerCorpus), in %;
             repeat r trains with seed r, so these are medians over seeds (one seed's F moves
             by a point or more on BC5CDR and by several on WNUT-17).
  RSS MB     the process's own peak RSS: ru_maxrss from os.wait4, taken by a small launcher
             process (started from this large one, a child would inherit its high-water mark).

Words are the tokens each method trains on: the file's tokens for (a), (b), (c); spaCy's
tokens of the space-joined sentence for (d), which re-tokenizes (it reports its own count).

Fairness choices (printed as notes): (a) trains on a normalized copy of wnut17train.conll
(TAB-only lines made empty), because `spacy convert` merges the raw file's sentences (the raw
conversion's doc count is printed; --a-raw also trains on it). Dropout is the seed loop's
hard-coded 0.5 everywhere. spaCy's batcher keeps one schedule across epochs, and so does (b);
(c) is given one shared schedule iterator to match (--c-schedule restart gives train()'s
default, restarted every epoch, as the seed loop (d) does). (c) and (d) get the config's
pipeline with ner's tok2vec listener replaced by a copy of the tok2vec (the same layers and
parameter count; printed). (d) is handed that pipeline initialized but untrained (so it
takes its resume_training branch); its blank `add_pipe("ner")` would use a different,
smaller default model. (a) and (b) evaluate once, at step 0, on the first --dev-limit test
sentences (eval_frequency is larger than any run), and save model-best then and model-last
at the end: two calls of (b)'s callback.

Targets (from the issue): (b) and (c) at >= 1.0x the words/s of (a); test F of (b) and (c)
within 0.5 points of (a) or above; the verify callback <= 5% of (b)'s training time.

Run
---
    /work/venv/bin/python bench/bench_train.py            # full run (default epochs below)
    /work/venv/bin/python bench/bench_train.py --quick    # smoke run: 1 epoch, 300 train/test examples
    /work/venv/bin/python bench/bench_train.py --epochs 5 --repeats 3 --a-raw --keep
"""
import argparse
import contextlib
import io
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from spacy.training import Corpus, Example
from spacy.util import fix_random_seed, load_config, load_model_from_config, registry
from thinc.api import Config, compounding

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA = ROOT / "shared" / "data"
DEFAULT_SEED_LOOP = ROOT / "shared" / "reference" / "seed_loop_v3.py"
CORPORA = {
    "wnut17": ("wnut17/wnut17train.conll", "wnut17/emerging.test.annotated"),
    "bc5cdr": ("bc5cdr/train.tsv", "bc5cdr/test.tsv"),
}
METHODS = ("a", "b", "b0", "c", "d")
LABELS = {
    "a": "(a) spacy train + Corpus.v1",
    "a-raw": "(a') same, raw convert",
    "b": "(b) spacy train + plugin",
    "b0": "(b0) (b) w/o verify cb",
    "c": "(c) train()",
    "d": "(d) seed loop",
}
# The full default run took 16.5 min on the shared 2-core machine (load ~3.5 from other jobs;
# ~27 min projected at load ~5); 3 epochs would take ~1.5x that.
DEFAULT_EPOCHS = 2
DROPOUT = 0.5  # the seed loop hard-codes the recipe's 0.5
SCHEDULE = (4.0, 32.0, 1.001)  # compounding batch sizes in examples: the recipe's
DEV_LIMIT = 200
EVAL_NEVER = 10**9  # eval_frequency: only step 0 is evaluated
F_TOLERANCE = 0.5  # test F points (0-100) below (a) still within target
CALLBACK_BUDGET = 0.05
SPACY_DEFAULT_EVAL_FREQUENCY = 200
TIMING_FILE = "timing.json"


# The logger (a) and (b) run with (`--code` this file): spaCy's console logger plus the wall
# and CPU time of the training loop.


@registry.loggers("bench_train.TimedConsoleLogger.v1")
def timed_console_logger(output_file: str) -> Callable:
    console = registry.get("loggers", "spacy.ConsoleLogger.v1")(progress_bar=False)

    def setup(nlp: Language, stdout: Any = sys.stdout, stderr: Any = sys.stderr) -> Tuple[Callable, Callable]:
        log_step, finalize = console(nlp, stdout, stderr)
        steps = 0
        wall, cpu = time.perf_counter(), time.process_time()

        def step(info: Optional[Dict[str, Any]]) -> None:
            nonlocal steps
            steps += 1
            log_step(info)

        def done() -> None:
            finalize()
            timing = {"loop_wall": time.perf_counter() - wall, "loop_cpu": time.process_time() - cpu,
                      "steps": steps}
            Path(output_file).write_text(json.dumps(timing))

        return step, done

    return setup


# Pipelines


def standalone_ner(config: Config) -> Language:
    """The config's pipeline, untrained, with ner's tok2vec listener replaced by its own copy
    of the tok2vec and the tok2vec component removed: the same layers, one component."""
    nlp = load_model_from_config(config.interpolate(), auto_fill=True)
    if "tok2vec" in nlp.pipe_names:
        nlp.replace_listeners("tok2vec", "ner", ["model.tok2vec"])
        nlp.remove_pipe("tok2vec")
    return nlp


def n_params(nlp: Language) -> int:
    total = 0
    for _, proc in nlp.pipeline:
        model = getattr(proc, "model", None)
        if model is None or model in (True, False):
            continue
        for node in model.walk():
            for name in node.param_names:
                if node.has_param(name):
                    total += node.get_param(name).size
    return total


# Data preparation


@dataclass
class Prepared:
    """One corpus's files and counts, shared by all methods."""

    name: str
    train: Path
    test: Path
    a_train: Path  # DocBin (a) trains on (converted from the normalized copy where needed)
    a_raw_train: Path  # DocBin converted from the raw file
    a_dev: Path
    seed_jsonl: Path
    init_model: Path  # (d)'s starting point
    n_sentences: int
    n_words: int  # per epoch, (b) and (c)
    a_docs: int
    a_raw_docs: int
    a_words: int
    a_raw_words: int
    convert_seconds: float
    notes: List[str] = field(default_factory=list)


def normalize_conll(source: Path, target: Path) -> int:
    """Copy `source` with whitespace-only lines made empty; returns how many were changed."""
    changed = 0
    with source.open(encoding="utf8") as src, target.open("w", encoding="utf8") as dst:
        for line in src:
            if line.strip() == "" and line not in ("\n", "\r\n"):
                changed += 1
                line = "\n"
            dst.write(line)
    return changed


def spacy_convert(source: Path, out_dir: Path) -> Tuple[Path, float]:
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "spacy", "convert", str(source), str(out_dir), "-c", "ner",
                    "-n", "1"], check=True, capture_output=True)
    return out_dir / (source.stem + ".spacy"), time.perf_counter() - start


def docbin_counts(path: Path, limit: int) -> Tuple[int, int]:
    """Docs in the DocBin (all of them), and the words an epoch of Corpus.v1 (under `limit`)."""
    examples = list(Corpus(path, limit=limit)(spacy.blank("en")))
    return len(DocBin().from_disk(path)), sum(len(eg.predicted) for eg in examples)


def write_seed_jsonl(examples: Iterable[Example], target: Path) -> None:
    """The seed tuples [text, {"entities": [[start, end, label]]}], text = tokens joined by
    single spaces."""
    with target.open("w", encoding="utf8") as out:
        for eg in examples:
            words = [t.text for t in eg.reference]
            starts, pos = [], 0
            for word in words:
                starts.append(pos)
                pos += len(word) + 1
            ents = [[starts[e.start], starts[e.end - 1] + len(words[e.end - 1]), e.label_]
                    for e in eg.reference.ents]
            out.write(json.dumps([" ".join(words), {"entities": ents}], ensure_ascii=False) + "\n")


def prepare(name: str, data: Path, work: Path, config: Config, limit: int) -> Prepared:
    from spacy_ner_trainer import NerCorpus

    train, test = (data / rel for rel in CORPORA[name])
    cdir = work / name
    cdir.mkdir(parents=True)
    nlp = standalone_ner(config)
    examples = list(NerCorpus(train, limit=limit)(nlp))
    n_words = sum(len(eg.predicted) for eg in examples)
    a_raw_train, convert_seconds = spacy_convert(train, cdir / "converted-raw")
    a_raw_docs, a_raw_words = docbin_counts(a_raw_train, limit)
    notes = []
    a_train, a_docs, a_words = a_raw_train, a_raw_docs, a_raw_words
    normalized = cdir / "normalized" / train.name
    normalized.parent.mkdir()
    changed = normalize_conll(train, normalized)
    if changed:
        a_train, _ = spacy_convert(normalized, cdir / "converted")
        a_docs, a_words = docbin_counts(a_train, limit)
        n_all = sum(1 for _ in NerCorpus(train).records())
        notes.append(f"{name}: `spacy convert -c ner` of the raw {train.name} gives {a_raw_docs:,} docs "
                     f"(NerCorpus: {n_all:,} sentences): {changed:,} TAB/space-only separator "
                     f"lines are not sentence breaks to it; (a) trains on a normalized copy "
                     f"({a_docs:,} docs)")
    test_copy = cdir / "normalized" / test.name
    normalize_conll(test, test_copy)
    a_dev, _ = spacy_convert(test_copy, cdir / "converted-test")
    if a_words != n_words:
        notes.append(f"{name}: (a) trains on {a_words:,} words an epoch, (b)/(c) on {n_words:,}")
    seed_jsonl = cdir / "train.jsonl"
    write_seed_jsonl(examples, seed_jsonl)
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    init_model = cdir / "init-model"
    nlp.to_disk(init_model)
    return Prepared(name, train, test, a_train, a_raw_train, a_dev, seed_jsonl, init_model,
                    len(examples), n_words, a_docs, a_raw_docs, a_words, a_raw_words,
                    convert_seconds, notes)


# Configs for (a) and (b)


def train_config(base: Config, method: str, prep: Prepared, epochs: int, limit: int,
                 dev_limit: int, timing: Path, seed: int = 0) -> Config:
    config = Config(base).copy()
    training = config["training"]
    training.update({"max_epochs": epochs, "max_steps": 0, "patience": 0, "eval_frequency": EVAL_NEVER,
                     "dropout": DROPOUT, "seed": seed})
    training["logger"] = {"@loggers": "bench_train.TimedConsoleLogger.v1", "output_file": str(timing)}
    start, stop, rate = SCHEDULE
    if method in ("a", "a-raw"):
        train_path = prep.a_train if method == "a" else prep.a_raw_train
        config["corpora"]["train"] = {"@readers": "spacy.Corpus.v1", "path": str(train_path),
                                      "max_length": 0, "gold_preproc": False, "limit": limit,
                                      "augmenter": None}
        config["corpora"]["dev"] = {"@readers": "spacy.Corpus.v1", "path": str(prep.a_dev),
                                    "max_length": 0, "gold_preproc": False, "limit": dev_limit,
                                    "augmenter": None}
        training["batcher"] = {"@batchers": "spacy.batch_by_sequence.v1", "get_length": None,
                               "size": {"@schedules": "compounding.v1", "start": start, "stop": stop,
                                        "compound": rate, "t": 0.0}}
    else:
        config["corpora"]["train"] = {"@readers": "spacy-ner-trainer.NerCorpus.v1",
                                      "path": str(prep.train), "limit": limit}
        config["corpora"]["dev"] = {"@readers": "spacy-ner-trainer.NerCorpus.v1",
                                    "path": str(prep.test), "limit": dev_limit}
        config["initialize"]["components"]["ner"] = {
            "labels": {"@readers": "spacy-ner-trainer.ner_labels.v1", "path": str(prep.train)}}
        training["batcher"] = {"@batchers": "spacy-ner-trainer.shuffled_batches.v1", "seed": seed,
                               "size": {"@schedules": "compounding.v1", "start": start, "stop": stop,
                                        "compound": rate, "t": 0.0}}
        if method == "b":
            training["before_to_disk"] = {"@callbacks": "spacy-ner-trainer.verify.v1"}
    return config


# Running one method in its own process


@dataclass
class Run:
    corpus: str
    method: str
    repeat: int
    model: Path
    words: int
    loop_wall: float
    loop_cpu: Optional[float]
    wall: float
    cpu: float
    rss_mb: float
    log: Path
    extra: Dict[str, Any] = field(default_factory=dict)


# Started by the (large) bench process, a child's ru_maxrss would start at the bench's own
# high-water mark (Linux keeps it across fork+exec), so each method is started by this small
# launcher, whose own RSS is a few MB, and which reports its child's usage.
LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"wall": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss, "rc": os.waitstatus_to_exitcode(status)}, out)
"""


def spawn(cmd: Sequence[str], log: Path, core: Optional[int] = None) -> Tuple[float, float, float]:
    """Run `cmd` (on CPU core `core` only, where given), output to `log`; returns wall seconds,
    CPU seconds (user + sys) and peak RSS (MB) of that process alone."""
    if core is not None:
        cmd = ["taskset", "-c", str(core), *cmd]  # taskset execs: the launcher still waits on the trainer
    usage_file = log.with_suffix(".usage.json")
    with log.open("wb") as out:
        subprocess.run([sys.executable, "-S", "-c", LAUNCHER, str(usage_file), *cmd], stdout=out,
                       stderr=subprocess.STDOUT, check=False)
    usage = json.loads(usage_file.read_text()) if usage_file.exists() else {"rc": "?"}
    if usage["rc"] != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(cmd)} exited {usage['rc']}; log {log}:\n{tail}")
    return usage["wall"], usage["cpu"], usage["maxrss_kb"] / 1024


def run_method(method: str, repeat: int, prep: Prepared, base: Config, args: argparse.Namespace,
               work: Path, core: Optional[int] = None, tag: str = "") -> Run:
    rdir = work / prep.name / f"{method}-{repeat}{tag}"
    rdir.mkdir()
    log = rdir / "log.txt"
    timing = rdir / TIMING_FILE
    extra: Dict[str, Any] = {}
    if method in ("a", "a-raw", "b", "b0"):
        config = train_config(base, method, prep, args.epochs, args.limit, args.dev_limit, timing, seed=repeat)
        config.to_disk(rdir / "config.cfg")
        cmd = [sys.executable, "-m", "spacy", "train", str(rdir / "config.cfg"), "--output", str(rdir / "out"),
               "--code", str(Path(__file__).resolve())]
        wall, cpu, rss = spawn(cmd, log, core)
        t = json.loads(timing.read_text())
        per_epoch = {"a": prep.a_words, "a-raw": prep.a_raw_words}.get(method, prep.n_words)
        words, loop_wall, loop_cpu, model = per_epoch * args.epochs, t["loop_wall"], t["loop_cpu"], rdir / "out" / "model-last"
        extra["steps"] = t["steps"]
        extra["callback_calls"] = log.read_text(errors="replace").count("verify (train,")
    elif method == "c":
        base_path = work / "base.cfg"
        cmd = [sys.executable, str(Path(__file__).resolve()), "_worker-c", str(base_path), str(prep.train),
               str(rdir / "model"), str(timing), "--epochs", str(args.epochs), "--limit", str(args.limit),
               "--schedule", args.c_schedule, "--seed", str(repeat)]
        wall, cpu, rss = spawn(cmd, log, core)
        t = json.loads(timing.read_text())
        words, loop_wall, loop_cpu, model = t["words"], t["loop_wall"], t["loop_cpu"], rdir / "model"
        extra["update_seconds"] = t["update_seconds"]
    elif method == "d":
        cmd = [sys.executable, str(args.seed_loop), str(prep.seed_jsonl), str(args.epochs), str(prep.init_model),
               str(rdir / "model")]
        wall, cpu, rss = spawn(cmd, log, core)
        line = [ln for ln in log.read_text().splitlines() if ln.startswith('{"train_seconds"')][-1]
        t = json.loads(line)
        words, loop_wall, loop_cpu, model = t["words"], t["train_seconds"], None, rdir / "model"
    else:
        raise ValueError(method)
    return Run(prep.name, method, repeat, model, words, loop_wall, loop_cpu, wall, cpu, rss, log, extra)


def worker_c(argv: Sequence[str]) -> None:
    """(c) in its own process: `train()` on the config's (standalone) ner, then save."""
    from spacy_ner_trainer import NerCorpus, train
    from spacy_ner_trainer.batching import DEFAULT_BATCH_SIZE

    parser = argparse.ArgumentParser(prog="bench_train.py _worker-c")
    for name in ("config", "train", "output", "timing"):
        parser.add_argument(name, type=Path)
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--schedule", choices=("shared", "restart"), default="shared")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    nlp = standalone_ner(load_config(args.config))
    # One iterator for the whole run continues across epochs, as spaCy's batcher does; the
    # tuple is train()'s default, restarted every epoch.
    sizes = compounding(*SCHEDULE) if args.schedule == "shared" else DEFAULT_BATCH_SIZE
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(nlp, NerCorpus(args.train, limit=args.limit), n_iter=args.epochs, dropout=DROPOUT,
                   batch_size=sizes, seed=args.seed)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    nlp.to_disk(args.output)
    args.timing.write_text(json.dumps({"loop_wall": wall, "loop_cpu": cpu, "words": result.n_words,
                                       "update_seconds": result.seconds}))


# Scoring and checks


def test_scores(model: Path, test: Path, limit: int) -> Tuple[Dict[str, float], int]:
    from spacy_ner_trainer import NerCorpus

    nlp = spacy.load(model)
    examples = list(NerCorpus(test, limit=limit)(nlp))
    scores = nlp.evaluate(examples)
    return {k: 100 * float(scores.get(k) or 0.0) for k in ("ents_p", "ents_r", "ents_f")}, n_params(nlp)


def time_callback(model: Path) -> Tuple[float, float]:
    """Seconds of verify.v1's first call (it reads its samples) and of a later one, on (b)'s
    trained pipeline."""
    from spacy_ner_trainer import verify_callback_v1

    nlp = spacy.load(model)
    callback = verify_callback_v1()
    times = []
    for _ in range(2):
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            callback(nlp)
        times.append(time.perf_counter() - start)
    return times[0], times[1]


def check_train_on_config_pipeline(base: Config, train_path: Path) -> str:
    """What train() makes of the init-config pipeline as it is (tok2vec + a listening ner):
    does it train, and can the result be run?"""
    from spacy_ner_trainer import NerCorpus, train

    nlp = load_model_from_config(base.interpolate(), auto_fill=True)
    step = "training"
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            train(nlp, NerCorpus(train_path, limit=8), n_iter=1)
            step = "running the trained pipeline"
            nlp("A sentence in London.")
    except Exception as err:  # reported, not raised: this is what a user would hit
        return (f"fails in {step} ({type(err).__name__}: {str(err).strip().splitlines()[0][:140]}), "
                f"pipeline after train(): {nlp.pipe_names}")
    return f"works, pipeline after train(): {nlp.pipe_names}"


# Report


@dataclass
class Row:
    corpus: str
    method: str
    epochs: int
    words: int
    loop_wall: float
    loop_wps: float  # words / loop wall seconds
    loop_cpu_wps: Optional[float]  # words / loop CPU seconds; None for (d)
    proc_cpu_wps: float  # words / CPU seconds of the whole process
    wall: float
    cpu: float
    rss_mb: float
    p: float = 0.0
    r: float = 0.0
    f: float = 0.0
    runs: List[Run] = field(default_factory=list)


def summarize(runs: List[Run], epochs: int) -> Row:
    med = statistics.median
    first = runs[0]
    loop_cpu = [r.words / r.loop_cpu for r in runs if r.loop_cpu]
    return Row(first.corpus, first.method, epochs, first.words,
               loop_wall=med(r.loop_wall for r in runs),
               loop_wps=med(r.words / r.loop_wall for r in runs),
               loop_cpu_wps=med(loop_cpu) if loop_cpu else None,
               proc_cpu_wps=med(r.words / r.cpu for r in runs),
               wall=med(r.wall for r in runs), cpu=med(r.cpu for r in runs),
               rss_mb=med(r.rss_mb for r in runs), runs=runs)


def _ratio(value: Optional[float], base: Optional[float]) -> str:
    return f"{value / base:.2f}" if value and base else "-"


def wps_ratio(row: Row, a: Row, pairs: Dict[Tuple[str, str], List[float]]) -> float:
    """words/s against (a): with --paired, the median of the ratios of runs made at the same
    time; else the ratio of the medians."""
    paired = pairs.get((row.corpus, row.method))
    return statistics.median(paired) if paired else row.loop_wps / a.loop_wps


def print_table(rows: List[Row], pairs: Dict[Tuple[str, str], List[float]]) -> None:
    header = (f"{'corpus':<7} {'method':<28} {'ep':>2} {'words':>7} {'loop s':>6} {'w/s':>6} {'x(a)':>5} "
              f"{'cpu w/s':>7} {'x(a)':>5} {'proc cpu w/s':>12} {'x(a)':>5} {'wall s':>6} "
              f"{'P':>5} {'R':>5} {'F':>5} {'RSS MB':>6}")
    print(header)
    print("-" * len(header))
    base = {r.corpus: r for r in rows if r.method == "a"}
    for row in rows:
        a = base.get(row.corpus)
        loop_cpu = f"{row.loop_cpu_wps:,.0f}" if row.loop_cpu_wps else "-"
        print(f"{row.corpus:<7} {LABELS[row.method]:<28} {row.epochs:>2} {row.words:>7,} {row.loop_wall:>6.1f} "
              f"{row.loop_wps:>6,.0f} {f'{wps_ratio(row, a, pairs):.2f}' if a else '-':>5} "
              f"{loop_cpu:>7} {_ratio(row.loop_cpu_wps, a and a.loop_cpu_wps):>5} "
              f"{row.proc_cpu_wps:>12,.0f} {_ratio(row.proc_cpu_wps, a and a.proc_cpu_wps):>5} {row.wall:>6.1f} "
              f"{row.p:>5.1f} {row.r:>5.1f} {row.f:>5.1f} {row.rss_mb:>6.0f}")
    print("w/s: words / wall seconds of the training loop; cpu w/s: words / CPU seconds of the loop; "
          "proc cpu w/s: words / CPU seconds of the whole process; P/R/F: test, in %")


def print_targets(rows: List[Row], callback: Dict[str, Tuple[float, float]],
                  pairs: Dict[Tuple[str, str], List[float]]) -> bool:
    print("\nTargets")
    by = {(r.corpus, r.method): r for r in rows}
    ok_all = True

    def check(ok: bool, text: str) -> None:
        nonlocal ok_all
        ok_all = ok_all and ok
        print(f"  {'PASS' if ok else 'FAIL'}  {text}")

    def speed(row: Row, a: Row) -> str:
        cpu = _ratio(row.loop_cpu_wps, a.loop_cpu_wps)
        paired = pairs.get((row.corpus, row.method))
        how = (f" (median of {len(paired)} runs made alongside (a): "
               + "/".join(f"{x:.2f}" for x in paired) + ")") if paired else ""
        return (f"words/s {row.loop_wps:,.0f} = {wps_ratio(row, a, pairs):.2f}x (a) {a.loop_wps:,.0f}{how}; "
                f"per loop CPU second {cpu}x, per process CPU second "
                f"{row.proc_cpu_wps / a.proc_cpu_wps:.2f}x")

    for corpus in dict.fromkeys(r.corpus for r in rows):
        a = by.get((corpus, "a"))
        if a is None:
            continue
        for m in ("b", "c"):
            row = by.get((corpus, m))
            if row is not None:
                check(wps_ratio(row, a, pairs) >= 1.0, f"{corpus} ({m}) >= 1.00x (a): {speed(row, a)}")
        b0 = by.get((corpus, "b0"))
        if b0 is not None:
            print(f"  info  {corpus} (b0), the plugin's reader, labels and batcher without the callback: "
                  f"{speed(b0, a)}")
        for m in ("b", "c"):
            row = by.get((corpus, m))
            if row is not None:
                check(row.f >= a.f - F_TOLERANCE, f"{corpus} ({m}) test F {row.f:.1f} vs (a) {a.f:.1f} "
                      f"(>= {a.f - F_TOLERANCE:.1f})")
        b = by.get((corpus, "b"))
        if b is not None and corpus in callback:
            first, later = callback[corpus]
            calls = max(1, statistics.median(r.extra.get("callback_calls", 0) for r in b.runs))
            direct = first + (calls - 1) * later
            share = direct / b.wall
            extra = ""
            if b0 is not None:
                extra = (f"; (b)-(b0): wall {b.wall - b0.wall:+.1f}s ({(b.wall - b0.wall) / b.wall:+.1%}), "
                         f"CPU {b.cpu - b0.cpu:+.1f}s ({(b.cpu - b0.cpu) / b.cpu:+.1%})")
            check(share <= CALLBACK_BUDGET,
                  f"{corpus} verify callback: {calls:g} calls, {direct:.2f}s timed directly = {share:.1%} of "
                  f"(b)'s {b.wall:.1f}s (<= {CALLBACK_BUDGET:.0%}){extra}")
    return ok_all


# Main


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--seed-loop", type=Path, default=DEFAULT_SEED_LOOP, help="seed_loop_v3.py")
    parser.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated: wnut17,bc5cdr")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated: a,b,b0,c,d")
    parser.add_argument("--epochs", type=int, default=None, help=f"epochs for every method (default {DEFAULT_EPOCHS})")
    parser.add_argument("--repeats", type=int, default=1, help="runs per method; the table shows medians")
    parser.add_argument("--limit", type=int, default=0, help="training examples per corpus (0: all)")
    parser.add_argument("--test-limit", type=int, default=0, help="test examples scored (0: all)")
    parser.add_argument("--dev-limit", type=int, default=DEV_LIMIT, help="test sentences (a)/(b) evaluate at step 0")
    parser.add_argument("--a-raw", action="store_true", help="also train (a) on the raw file's conversion")
    parser.add_argument("--c-schedule", choices=("shared", "restart"), default="shared",
                        help="(c)'s batch-size schedule: one across epochs as spaCy's, or train()'s default")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 epoch, --limit 300, --test-limit 300")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (configs, logs, models)")
    parser.add_argument("--paired", action="store_true",
                        help="run (a) at the same time as each other method, one CPU core each (swapped every "
                             "pair); x(a) is then the median of those pairs' ratios")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = args.epochs or 1
        args.limit = args.limit or 300
        args.test_limit = args.test_limit or 300
    args.epochs = args.epochs or DEFAULT_EPOCHS
    return args


def package_revision() -> str:
    """The package's git commit (with '+dirty' for uncommitted changes), where it is a checkout."""
    import spacy_ner_trainer

    where = Path(spacy_ner_trainer.__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=where, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=where, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"
    return head + ("+dirty" if dirty else "")


def init_base_config(work: Path) -> Config:
    path = work / "base.cfg"
    subprocess.run([sys.executable, "-m", "spacy", "init", "config", str(path), "-l", "en", "-p", "ner",
                    "-o", "efficiency", "-F"], check=True, capture_output=True)
    return load_config(path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if args.a_raw and "a" in methods:
        methods.insert(methods.index("a") + 1, "a-raw")
    work = Path(tempfile.mkdtemp(prefix="bench_train_"))
    started = time.perf_counter()
    print(f"bench_train: spaCy {spacy.__version__}, spacy-ner-trainer {package_revision()}, {', '.join(corpora)}, methods {', '.join(methods)}, "
          f"epochs {args.epochs}, repeats {args.repeats}, dropout {DROPOUT}, "
          f"limit {args.limit or 'none'}; scratch {work}", flush=True)
    notes: List[str] = []
    try:
        base = init_base_config(work)
        print(f"  [{time.perf_counter() - started:6.0f}s] base config", flush=True)
        as_is = check_train_on_config_pipeline(base, args.data / CORPORA[corpora[0]][0])
        notes.append(f"train() on the `init config` pipeline as it is (tok2vec + ner listening to it) {as_is}; "
                     "(c) is given the ner-only pipeline (listener replaced, tok2vec removed) either way")
        preps = {}
        for name in corpora:
            preps[name] = prepare(name, args.data, work, base, args.limit)
            print(f"  [{time.perf_counter() - started:6.0f}s] {name} prepared", flush=True)
            notes.extend(preps[name].notes)
        runs: Dict[Tuple[str, str], List[Run]] = {}
        pairs: Dict[Tuple[str, str], List[float]] = {}

        def log(name: str, run: Run, repeat: int) -> None:
            print(f"  [{time.perf_counter() - started:6.0f}s] {name} {run.method} #{repeat}: "
                  f"{run.words / run.loop_wall:,.0f} words/s, wall {run.wall:.1f}s, "
                  f"RSS {run.rss_mb:.0f} MB", flush=True)

        for repeat in range(args.repeats):
            # The order rotates every repeat, so that no method always runs after the same one.
            shift = repeat % len(methods)
            for name in corpora:
                order = methods[shift:] + methods[:shift]
                if not args.paired:
                    for method in order:
                        run = run_method(method, repeat, preps[name], base, args, work)
                        runs.setdefault((name, method), []).append(run)
                        log(name, run, repeat)
                    continue
                for j, method in enumerate(m for m in order if m != "a"):
                    # (a) and the method at the same time, one core each (swapped every pair).
                    core = (repeat + j) % 2
                    with ThreadPoolExecutor(2) as pool:
                        a_job = pool.submit(run_method, "a", repeat, preps[name], base, args, work, core,
                                            f"-with-{method}")
                        m_job = pool.submit(run_method, method, repeat, preps[name], base, args, work, 1 - core)
                        a_run, m_run = a_job.result(), m_job.result()
                    for run in (a_run, m_run):
                        runs.setdefault((name, run.method), []).append(run)
                        log(name, run, repeat)
                    pairs.setdefault((name, method), []).append(
                        (m_run.words / m_run.loop_wall) / (a_run.words / a_run.loop_wall))
        rows, callback, params = [], {}, {}
        for (name, method), group in runs.items():
            row = summarize(group, args.epochs)
            # Every repeat trains with its own seed: the row's P/R/F are medians over them.
            scored = []
            for run in group:
                scores, params[(name, method)] = test_scores(run.model, preps[name].test, args.test_limit)
                run.extra["f"] = scores["ents_f"]
                scored.append(scores)
            row.p, row.r, row.f = (statistics.median(sc[k] for sc in scored) for k in ("ents_p", "ents_r", "ents_f"))
            rows.append(row)
            if method == "b":
                callback[name] = time_callback(group[-1].model)
        print()
        print_table(rows, pairs)
        ok = print_targets(rows, callback, pairs)
        print_notes(args, preps, rows, params, callback, notes)
        print(f"\ntotal {time.perf_counter() - started:.0f}s")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def print_notes(args: argparse.Namespace, preps: Dict[str, Prepared], rows: List[Row],
                params: Dict[Tuple[str, str], int], callback: Dict[str, Tuple[float, float]],
                notes: List[str]) -> None:
    from spacy_ner_trainer.loop import DEFAULT_DROPOUT

    print("\nNotes")
    start, stop, rate = SCHEDULE
    lines = [
        f"epochs {args.epochs} for every method; dropout {DROPOUT} everywhere (the seed loop's hard-coded "
        f"value; the package default DEFAULT_DROPOUT={DEFAULT_DROPOUT} is not used); batch sizes compounding "
        f"{start:g}->{stop:g} x{rate} examples: (a) spacy.batch_by_sequence.v1, (b) shuffled_batches.v1, both one "
        f"schedule across epochs; (c) {'the same (one shared iterator passed to train())' if args.c_schedule == 'shared' else 'restarted every epoch (train() default)'}; "
        f"(d) restarted every epoch (hard-coded)",
        "architecture: `spacy init config -p ner -o efficiency` (tok2vec MultiHashEmbed.v2 rows "
        "[5000,1000,2500,2500] + MaxoutWindowEncoder.v2 width 96 depth 4; ner TransitionBasedParser.v2 "
        "hidden 64); (a)/(b) as a tok2vec component and a listening ner, (c)/(d) one ner holding a copy of "
        "that tok2vec; parameters: " + "; ".join(
            f"{corpus} " + ", ".join(f"{m} {p:,}" for (c, m), p in params.items() if c == corpus)
            for corpus in dict.fromkeys(c for c, _ in params)),
        "(d) is given that pipeline initialized (labels, random weights) but untrained, built by the bench "
        "(not timed), so it runs its resume_training branch; a blank add_pipe('ner') would use "
        "HashEmbedCNN.v2 (embed_size 2000), a different model",
        f"(a)/(b) evaluate once (step 0) on the first {args.dev_limit} test sentences; (a)'s and (b)'s "
        "loop time includes it and the model-best save after it",
        "test scores: every repeat's saved pipeline (model-last for spacy train) on "
        + ", ".join(f"{p.test.name}" for p in preps.values())
        + (f" (first {args.test_limit})" if args.test_limit else "") + ", spaCy's Scorer (nlp.evaluate); "
        "repeat r trains " + ", ".join(f"({m})" for m in dict.fromkeys(r.method for r in rows) if m != "d")
        + " with seed r ([training.seed], the batcher's seed, train(seed=)), so P/R/F are medians over seeds"
        + ("; (d) takes no seed argument and runs seed 0 every time" if any(r.method == "d" for r in rows) else ""),
        *(["--paired: in every repeat (a) ran once alongside each other method, at the same time, the two "
            "pinned to different CPU cores (swapped every pair); (a)'s row is over all its runs, and x(a) of "
            "w/s is the median of the pairs' ratios (listed under Targets); the other x(a) columns are "
            "ratios of medians"] if args.paired else []),
        "test F per repeat: " + "; ".join(
            f"{row.corpus} {row.method} " + "/".join(f"{r.extra['f']:.1f}" for r in row.runs) for row in rows),
    ]
    for name, prep in preps.items():
        lines.append(f"{name}: {prep.n_sentences:,} training sentences, {prep.n_words:,} words an epoch; "
                     f"`spacy convert` of the raw file: {prep.a_raw_docs:,} docs in {prep.convert_seconds:.1f}s "
                     f"(not counted in (a))")
    for row in rows:
        if row.method == "c":
            upd = statistics.median(r.extra["update_seconds"] for r in row.runs)
            lines.append(f"{row.corpus} (c): {upd:.1f}s of its {row.loop_wall:.1f}s loop were nlp.update batches")
        if row.method == "b" and row.corpus in callback:
            first, later = callback[row.corpus]
            steps = statistics.median(r.extra.get("steps", 0) for r in row.runs)
            calls = steps // SPACY_DEFAULT_EVAL_FREQUENCY + 2
            cost = first + (calls - 1) * later
            lines.append(f"{row.corpus} verify.v1: first call {first:.2f}s, later calls {later:.2f}s; with "
                         f"spaCy's default eval_frequency={SPACY_DEFAULT_EVAL_FREQUENCY} this run's {steps:g} "
                         f"steps would call it {calls:g} times, {cost:.1f}s = {cost / row.loop_wall:.1%} of (b)'s loop")
    for line in lines + notes:
        print(f"  - {line}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker-c":
        worker_c(sys.argv[2:])
    else:
        sys.exit(main())
