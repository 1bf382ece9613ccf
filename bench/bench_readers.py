"""Benchmark the NerCorpus.v1 reader against spaCy's own route and against a floor.

What it measures
----------------
Each shared corpus's train split (wnut17, ncbi-disease, bc5cdr), the three concatenated once
("all 1x") and concatenated 50 times ("all 50x", ~130 MB, written to a temp dir and deleted
afterwards) are read into `Example`s by:

  (a) reader         `spacy_ner_trainer.ner_corpus_v1(path)(nlp)`
  (b) convert        `python -m spacy convert FILE OUTDIR -c ner -n 1`, the conversion alone
      Corpus.v1      `spacy.training.Corpus(OUTDIR/FILE.spacy)(nlp)`, reading the DocBin only
      convert+read   the two together: what a user pays to get from the file to Examples
  (c) floor          the simplest parse (split lines; a blank line ends a sentence; token =
                     first column, tag = last column) and, per sentence,
                     `Example(Doc(vocab, words), Doc(vocab, words, ents=tags))` in a tight loop

with `nlp = spacy.blank("en")`. Every measurement runs in its own fresh subprocess, which
iterates the corpus with a `for` loop (keeping nothing) and reports the examples counted, the
seconds the reading took (imports and `spacy.blank` excluded) and its peak RSS (VmHWM), so
peak RSS is per method. Methods run one after another, never in parallel, interleaved across
repeats (the order rotates each repeat); the table shows medians. The convert step runs inside
the child exactly as `python -m spacy convert` does (via runpy), so its RSS is measured the
same way. (b) on the 50x file runs last, and its conversion only `--b-50x-convert-runs` times
(default 1): spaCy's ner converter is quadratic in document length and wnut17train holds one
46k-token "document" (its TAB-only separator lines are not sentence breaks to spaCy), so one
50x conversion takes ~45 minutes on an idle 2-core machine (50x the ~45 s that wnut17train
alone takes) and longer under load. A run that fails (or is killed) is reported as such in the
table and the others go on; Ctrl-C or SIGTERM stops the schedule and prints what was measured.

Targets (from the issue): (a) >= 0.8x the floor's throughput and >= (b)'s; (a)'s peak RSS on
the 50x file within 1.2x of its peak RSS on the 1x concatenation of the same files.

Run
---
    /work/venv/bin/python bench/bench_readers.py              # full run, 3 repeats
    /work/venv/bin/python bench/bench_readers.py --quick      # smoke run, 1 repeat
    /work/venv/bin/python bench/bench_readers.py --skip-b-50x # without (b) on the 50x file
    /work/venv/bin/python bench/bench_readers.py --data DIR   # corpora elsewhere
"""
import argparse
import contextlib
import io
import json
import os
import re
import resource
import runpy
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
import spacy.cli  # noqa: F401  (b)'s convert command, imported before any clock starts
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Corpus, Example
from wasabi import table

from spacy_ner_trainer import ner_corpus_v1

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRAIN_SPLITS = {
    "wnut17": "wnut17/wnut17train.conll",
    "ncbi-disease": "ncbi-disease/train.tsv",
    "bc5cdr": "bc5cdr/train.tsv",
}
CONCAT_TIMES = 50
ALL_1X, ALL_50X = "all 1x", f"all {CONCAT_TIMES}x"
RESULT_PREFIX = "BENCH_RESULT "
Reader = Callable[[Language], Iterator[Example]]  # what a registered corpus reader returns

# Child methods, in table order; "b-both" (convert+read) is derived from the two (b) runs.
READER, CONVERT, CORPUS, FLOOR = "a-reader", "b-convert", "b-corpus", "c-floor"
METHODS = (READER, CONVERT, CORPUS, FLOOR)
BOTH = "b-both"
LABELS = {
    READER: "(a) NerCorpus.v1",
    CONVERT: "(b) spacy convert",
    CORPUS: "(b) Corpus.v1 read only",
    BOTH: "(b) convert+read",
    FLOOR: "(c) floor",
}


@dataclass
class Run:
    """One measurement, as a child process reports it."""

    examples: int
    seconds: float  # wall clock, reading only
    cpu_s: float  # this process's CPU time over the same stretch: steadier on a busy machine
    rss_mb: float
    wall_s: float = 0.0  # the whole child process, start-up and imports included


# ---------------------------------------------------------------------------------------------
# The child: one method over one file, in a fresh process


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM is the current image's own high-water mark; ru_maxrss
    (the fallback) can inherit the parent's from before exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def floor_corpus(path: Path) -> Reader:
    """(c): the same Docs and Examples as the reader, built straight from the words."""

    def corpus(nlp: Language) -> Iterator[Example]:
        vocab = nlp.vocab
        words: List[str] = []
        tags: List[str] = []
        with path.open(encoding="utf8") as file_:
            for line in file_:
                cols = line.split()
                if cols:
                    words.append(cols[0])
                    tags.append(cols[-1])
                elif words:
                    yield Example(Doc(vocab, words=words), Doc(vocab, words=words, ents=tags))
                    words, tags = [], []
        if words:
            yield Example(Doc(vocab, words=words), Doc(vocab, words=words, ents=tags))

    return corpus


class Clock:
    """Wall and CPU seconds since it was made."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> Tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def count_examples(make_corpus: Callable[[], Reader], nlp: Language) -> Tuple[int, float, float]:
    """Build the corpus and iterate it, keeping nothing: (examples, seconds, CPU seconds)."""
    clock = Clock()
    count = 0
    for _ in make_corpus()(nlp):
        count += 1
    return (count, *clock.read())


def run_convert(path: Path, out_dir: Path) -> Tuple[int, float, float]:
    """(b)'s first step, exactly as `python -m spacy convert PATH OUT_DIR -c ner -n 1` runs
    it: (documents written, seconds, CPU seconds)."""
    argv, sys.argv = sys.argv, ["spacy", "convert", str(path), str(out_dir), "-c", "ner", "-n", "1"]
    printed = io.StringIO()
    clock = Clock()
    try:
        with contextlib.redirect_stdout(printed):
            runpy.run_module("spacy", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            raise RuntimeError(f"spacy convert failed ({exit_.code}):\n{printed.getvalue()}")
    finally:
        sys.argv = argv
    seconds, cpu_s = clock.read()
    written = re.search(r"\((\d+) documents\)", printed.getvalue())
    if written is None:
        raise RuntimeError(f"spacy convert wrote no file:\n{printed.getvalue()}")
    return int(written.group(1)), seconds, cpu_s


def child_main(method: str, path: Path, out_dir: Optional[Path]) -> None:
    """Runs one measurement and prints it as one RESULT_PREFIX + JSON line."""
    if method == CONVERT:
        assert out_dir is not None
        examples, seconds, cpu_s = run_convert(path, out_dir)
    else:
        nlp = spacy.blank("en")
        make_corpus: Dict[str, Callable[[], Reader]] = {
            READER: lambda: ner_corpus_v1(path),
            CORPUS: lambda: Corpus(path),
            FLOOR: lambda: floor_corpus(path),
        }
        examples, seconds, cpu_s = count_examples(make_corpus[method], nlp)
    result = {"examples": examples, "seconds": seconds, "cpu_s": cpu_s, "rss_mb": peak_rss_mb()}
    print(RESULT_PREFIX + json.dumps(result), flush=True)


# ---------------------------------------------------------------------------------------------
# The driver: files, the schedule of child runs, the table


def write_concatenation(files: Sequence[Path], times: int, target: Path) -> Path:
    """The files, each followed by one blank line, `times` times over."""
    block = "".join(f.read_text(encoding="utf8").rstrip("\n") + "\n\n" for f in files)
    with target.open("w", encoding="utf8") as out:
        for _ in range(times):
            out.write(block)
    return target


def spawn(method: str, path: Path, out_dir: Optional[Path] = None) -> Union[Run, str]:
    """Runs one measurement in a fresh interpreter: its report, or why it failed."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", method, str(path)]
    if out_dir is not None:
        cmd += ["--out", str(out_dir)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    reports = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not reports:
        print(f"{method} on {path} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-4000:]}",
              file=sys.stderr, flush=True)
        return f"failed ({'signal ' + str(-proc.returncode) if proc.returncode < 0 else 'exit ' + str(proc.returncode)})"
    return Run(**json.loads(reports[-1][len(RESULT_PREFIX):]), wall_s=wall)


def plan(corpora: Dict[str, Path], repeats: int, skip_b_50x: bool,
         b_50x_convert_runs: int) -> List[Tuple[int, str, str]]:
    """(repeat, corpus, method) in run order: every corpus each repeat, the methods' order
    rotated each repeat, (b)'s convert always before its read. (b) on the 50x file comes
    last, its conversions then its reads, so that its hours hold up nothing else."""
    order: List[Tuple[int, str, str]] = []
    for rep in range(repeats):
        shift = rep % 3
        groups = [[READER], [CONVERT, CORPUS], [FLOOR]]
        groups = groups[shift:] + groups[:shift]
        for name in corpora:
            for method in (m for g in groups for m in g):
                if not (name == ALL_50X and method in (CONVERT, CORPUS)):
                    order.append((rep, name, method))
    if not skip_b_50x and ALL_50X in corpora:
        order += [(rep, ALL_50X, CONVERT) for rep in range(b_50x_convert_runs)]
        order += [(rep, ALL_50X, CORPUS) for rep in range(repeats)]
    return order


class Interrupted(Exception):
    """SIGTERM: stop measuring, and print what was measured."""


def on_sigterm(signum: int, frame: object) -> None:
    raise Interrupted()


@dataclass
class Measured:
    runs: Dict[Tuple[str, str], List[Run]]
    failed: Dict[Tuple[str, str], str]  # why a (corpus, method) has no runs
    done: int  # runs of the schedule finished
    planned: int


def measure(corpora: Dict[str, Path], work: Path, schedule: List[Tuple[int, str, str]]) -> Measured:
    """Runs the schedule. A run that fails is reported in the table and the others still
    run; Ctrl-C or SIGTERM stops the schedule (the running child is killed) and what was
    measured so far is reported."""
    runs: Dict[Tuple[str, str], List[Run]] = {}
    failed: Dict[Tuple[str, str], str] = {}
    done = 0
    try:
        for rep, name, method in schedule:
            run_one(corpora, work, (rep, name, method), f"[{done + 1:>3}/{len(schedule)}]", runs, failed)
            done += 1
    except (KeyboardInterrupt, Interrupted):
        print(f"interrupted after {done} of {len(schedule)} runs", file=sys.stderr, flush=True)
        for _, name, method in schedule[done:]:
            if (name, method) not in runs:
                failed.setdefault((name, method), "not run (interrupted)")
    for name in corpora:  # convert+read: each read paired with a conversion of the same file
        converts, reads = runs.get((name, CONVERT), []), runs.get((name, CORPUS), [])
        if converts and reads:
            pairs = [(converts[j % len(converts)], read) for j, read in enumerate(reads)]
            runs[(name, BOTH)] = [
                Run(r.examples, c.seconds + r.seconds, c.cpu_s + r.cpu_s, max(c.rss_mb, r.rss_mb))
                for c, r in pairs
            ]
    return Measured(runs, failed, done, len(schedule))


def run_one(corpora: Dict[str, Path], work: Path, step: Tuple[int, str, str], counter: str,
            runs: Dict[Tuple[str, str], List[Run]], failed: Dict[Tuple[str, str], str]) -> None:
    """One step of the schedule, its result added to `runs` or `failed`."""
    rep, name, method = step
    out_dir = work / "converted" / name.replace(" ", "_")
    out_dir.mkdir(parents=True, exist_ok=True)
    path = corpora[name]
    if method == CORPUS:
        path = out_dir / (corpora[name].stem + ".spacy")
    run = spawn(method, path, out_dir if method == CONVERT else None) if path.exists() else "no converted file"
    where = f"  {counter} repeat {rep + 1} {name:<13} {LABELS[method]:<24}"
    if isinstance(run, str):
        failed[(name, method)] = run
        print(f"{where} {run}", file=sys.stderr, flush=True)
        return
    runs.setdefault((name, method), []).append(run)
    print(f"{where} {run.examples:>7} examples {run.seconds:8.2f} s {run.rss_mb:8.1f} MB",
          file=sys.stderr, flush=True)


@dataclass
class Row:
    runs: int
    examples: int
    seconds: float
    per_s: float
    cpu_s: float
    rss_mb: float


def summarize(runs: List[Run]) -> Row:
    counts = {r.examples for r in runs}
    if len(counts) != 1:
        raise RuntimeError(f"example counts differ between repeats: {sorted(counts)}")
    return Row(
        runs=len(runs),
        examples=runs[0].examples,
        seconds=statistics.median(r.seconds for r in runs),
        per_s=statistics.median(r.examples / r.seconds for r in runs),
        cpu_s=statistics.median(r.cpu_s for r in runs),
        rss_mb=statistics.median(r.rss_mb for r in runs),
    )


def print_table(rows: Dict[Tuple[str, str], Row], corpora: Sequence[str],
                failed: Dict[Tuple[str, str], str]) -> None:
    header = ("corpus", "method", "runs", "examples", "seconds", "examples/s",
              "CPU s", "peak RSS MB", "vs floor", "(CPU)")
    data = []
    for name in corpora:
        floor = rows.get((name, FLOOR))
        for method in (READER, CONVERT, CORPUS, BOTH, FLOOR):
            row = rows.get((name, method))
            if row is None:
                why = failed.get((name, method), failed.get((name, CONVERT), "skipped"))
                data.append((name, LABELS[method], 0, why, "", "", "", "", "", ""))
                continue
            ratios = (f"{speedup(row, floor):.2f}x", f"{speedup(row, floor, cpu=True):.2f}x") if floor else ("", "")
            data.append((name, LABELS[method], row.runs, row.examples, f"{row.seconds:.2f}",
                         f"{row.per_s:,.0f}", f"{row.cpu_s:.2f}", f"{row.rss_mb:.1f}", *ratios))
    print(table(data, header=header, divider=True, aligns=("l", "l") + ("r",) * 8))


def speedup(row: Row, base: Row, cpu: bool = False) -> float:
    """Throughput relative to `base` over the same file: base seconds / row seconds (wall, or
    CPU), which is the examples/s ratio where both yield the same examples (not so for spaCy's
    converter on wnut17train, whose fewer, longer examples would flatter an examples/s ratio)."""
    return base.cpu_s / row.cpu_s if cpu else base.seconds / row.seconds


def ratio_text(row: Row, base: Row) -> str:
    return f"{speedup(row, base):.2f}x (CPU time {speedup(row, base, cpu=True):.2f}x)"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_targets(rows: Dict[Tuple[str, str], Row], corpora: Sequence[str]) -> bool:
    """Prints each target per corpus with its number; True when all are met."""
    lines: List[str] = []
    results: List[bool] = []

    def check(ok: bool, text: str) -> None:
        results.append(ok)
        lines.append(f"  {verdict(ok)}  {text}")

    for name in corpora:
        a, c = rows.get((name, READER)), rows.get((name, FLOOR))
        if a is None or c is None:
            lines.append(f"  ----  {name:<13} (a)/(c) throughput: not measured")
            continue
        check(speedup(a, c) >= 0.8, f"{name:<13} (a)/(c) throughput {ratio_text(a, c)}  target >= 0.80x")
    for name in corpora:
        a, both, read = rows.get((name, READER)), rows.get((name, BOTH)), rows.get((name, CORPUS))
        if a is None or both is None or read is None:
            lines.append(f"  ----  {name:<13} (a)/(b) throughput: not measured")
            continue
        check(speedup(a, both) >= 1.0,
              f"{name:<13} (a)/(b convert+read) throughput {ratio_text(a, both)}  target >= 1.00x")
        check(speedup(a, read) >= 1.0,
              f"{name:<13} (a)/(b Corpus.v1 read only) throughput {ratio_text(a, read)}  stricter: >= 1.00x")
    one, fifty = rows.get((ALL_1X, READER)), rows.get((ALL_50X, READER))
    if one is not None and fifty is not None:
        check(fifty.rss_mb <= 1.2 * one.rss_mb,
              f"(a) peak RSS {ALL_50X} / {ALL_1X}: {fifty.rss_mb:.1f} / {one.rss_mb:.1f} MB "
              f"= {fifty.rss_mb / one.rss_mb:.2f}x  target <= 1.20x")
    print("targets (PASS/FAIL on wall-clock throughput, as the issue states them)")
    print("\n".join(lines))
    unmeasured = sum(line.startswith("  ----") for line in lines)
    print(f"  overall: {verdict(all(results))} ({sum(results)}/{len(results)} checks pass"
          + (f"; {unmeasured} not measured)" if unmeasured else ")"))
    return all(results)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help=f"the shared data directory (default: {DEFAULT_DATA})")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (median)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: --repeats 1")
    parser.add_argument("--skip-b-50x", action="store_true",
                        help="do not run (b) on the 50x file (its conversion takes long)")
    parser.add_argument("--b-50x-convert-runs", type=int, default=1,
                        help="conversions of the 50x file (default 1; its reads still repeat)")
    parser.add_argument("--child", metavar="METHOD", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("path", nargs="?", type=Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, args.path, args.out)
        return 0
    repeats = 1 if args.quick else args.repeats
    splits = {name: args.data / rel for name, rel in TRAIN_SPLITS.items()}
    missing = [str(p) for p in splits.values() if not p.is_file()]
    if missing:
        sys.exit(f"missing corpora (set --data): {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="bench_readers_") as tmp:
        work = Path(tmp)
        corpora = dict(splits)
        corpora[ALL_1X] = write_concatenation(list(splits.values()), 1, work / "all_1x.conll")
        corpora[ALL_50X] = write_concatenation(list(splits.values()), CONCAT_TIMES, work / "all_50x.conll")
        schedule = plan(corpora, repeats, args.skip_b_50x, args.b_50x_convert_runs)
        print(f"{len(schedule)} runs, one at a time; {corpora[ALL_50X].stat().st_size / 1e6:.0f} MB "
              f"50x file in {work}", file=sys.stderr)
        load_before = os.getloadavg()[1]
        signal.signal(signal.SIGTERM, on_sigterm)
        measured = measure(corpora, work, schedule)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        load_after = os.getloadavg()[1]
    rows = {key: summarize(value) for key, value in measured.runs.items()}
    overheads = [r.wall_s - r.seconds for key, rs in measured.runs.items() if key[1] != BOTH for r in rs]
    print(f"\nNER corpus readers, {repeats} repeat(s), medians; nlp = spacy.blank('en'); spaCy "
          f"{spacy.__version__}; python {sys.version.split()[0]}; {os.cpu_count()} CPUs, 5-min load "
          f"average {load_before:.1f} at the start, {load_after:.1f} at the end")
    if measured.done < measured.planned:
        print(f"INTERRUPTED after {measured.done} of {measured.planned} runs: partial results")
    print_table(rows, list(corpora), measured.failed)
    if overheads:
        print(f"seconds exclude each child's start-up, imports and spacy.blank "
              f"(median {statistics.median(overheads):.2f} s a child).")
    print("examples: what each method yields; spaCy's ner converter does not split sentences on "
          "wnut17train's TAB-only lines.")
    print("vs floor and the ratios below: throughput over the same file, i.e. the floor's seconds / "
          "the method's (= the examples/s ratio where the example counts match);")
    print("(CPU): the same from each child's CPU time, which other load on the machine disturbs less.\n")
    print_targets(rows, list(corpora))
    return 0 if measured.done == measured.planned else 1


if __name__ == "__main__":
    sys.exit(main())
