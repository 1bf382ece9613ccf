"""The benchmarks' shared harness: measure in a fresh process, repeat, take medians, print a table.

Usage (from a script in bench/, which Python puts on sys.path):

    from harness import CORPORA, DATA, Results, call, check, clock, measure, rotate, scratch, start

    m = measure(["python", "-m", "spacy", "train", cfg], core=0)    # a command, pinned to core 0
    m = call("bench_x.py:work", {"path": "a.tsv", "seed": 1})       # bench_x.work(**args) in a fresh
    m.wall, m.cpu, m.rss_mb, m.result, m.output                     # Python; m.result: what it returned
    run = start(cmd); run.signal(signal.SIGINT); m = run.wait(check=False)   # to interrupt it
    run.running(), run.cpu_so_far()                                 # while it runs

    def work(path: str, seed: int) -> dict:    # in bench_x.py: JSON args in, JSON out
        with clock() as loop:                   # wall and CPU seconds of a region
            ...
        return {"loop_wall": loop.wall, "loop_cpu": loop.cpu}

    res = Results(baseline="spacy train")
    for repeat in range(3):
        for name in rotate(["spacy train", "ours"], repeat):            # order rotates every repeat
            res.add(name, group="wnut17", pair=repeat, wps=..., f=...)
    res.print({"wps": ",.0f", "f": ".1f"}, ratios=["wps"])     # medians; ratios against the baseline
    res.add("ours", group="wnut17", same="yes")                   # str values are shown as they are
    ok = check(res.ratio("ours", "wps", group="wnut17") >= 1.0, "ours >= 1.00x spacy train")
    with scratch("bench_x_", keep=False) as work: ...             # a temp folder, removed after
    head_sentences(DATA / CORPORA["bc5cdr"][0], work / "train.tsv", 500)   # a corpus's first 500 sentences
    revision()                                                      # "spaCy 3.8.x, spacy-ner-trainer <commit>"

Measurements: wall seconds of the process, its CPU seconds (user + sys, children included) and
peak RSS, taken by a small launcher process: a child of this (large) process would inherit its
RSS high-water mark across fork+exec. `core` pins the process to one CPU core with taskset.
Ratios: where the row and the baseline share `pair` keys (the same repeat, or runs made at the
same time), the median of the per-pair ratios, which takes out a shared machine's drift;
otherwise the ratio of the medians.
"""
import contextlib
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Hashable, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, Union

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "shared" / "data"
# name: (train, dev, test), relative to DATA
CORPORA = {
    "wnut17": ("wnut17/wnut17train.conll", "wnut17/emerging.dev.conll", "wnut17/emerging.test.annotated"),
    "ncbi-disease": ("ncbi-disease/train.tsv", "ncbi-disease/devel.tsv", "ncbi-disease/test.tsv"),
    "bc5cdr": ("bc5cdr/train.tsv", "bc5cdr/devel.tsv", "bc5cdr/test.tsv"),
}

LAUNCHER = """
import json, os, signal, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[2:])
with open(sys.argv[1] + ".pid", "w") as out:
    out.write(str(proc.pid))
signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the child; wait for it
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"wall": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
               "maxrss_kb": usage.ru_maxrss, "rc": os.waitstatus_to_exitcode(status)}, out)
"""


@dataclass
class Measurement:
    """One process: exit code, wall and CPU seconds, peak RSS, its output and what it returned."""

    rc: int
    wall: float
    cpu: float
    rss_mb: float
    output: str
    result: Any = None


class Running:
    """A measured process in flight (see `start`)."""

    def __init__(self, cmd: Sequence[str], core: Optional[int], log: Optional[Path],
                 work: Optional[Path] = None, result: Optional[Path] = None):
        if core is not None:
            cmd = ["taskset", "-c", str(core), *cmd]  # taskset execs: the launcher waits on the command
        self.cmd, self.result_file = list(cmd), result
        self.dir = work or Path(tempfile.mkdtemp(prefix="harness_"))
        self.log = log or self.dir / "log.txt"
        self.usage = self.dir / "usage.json"
        with self.log.open("wb") as out:
            self.launcher = subprocess.Popen([sys.executable, "-S", "-c", LAUNCHER, str(self.usage), *self.cmd],
                                             stdout=out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        """The measured process's id (not the launcher's)."""
        pid_file = Path(str(self.usage) + ".pid")
        while not pid_file.exists() or not pid_file.read_text():
            if self.launcher.poll() is not None:
                raise RuntimeError(f"{' '.join(self.cmd)} did not start:\n{self.log.read_text(errors='replace')}")
            time.sleep(0.01)
        return int(pid_file.read_text())

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def cpu_so_far(self) -> float:
        """CPU seconds (user + sys) the measured process has used so far; 0.0 once it has ended."""
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def running(self) -> bool:
        return self.launcher.poll() is None

    def wait(self, check: bool = True) -> Measurement:
        """Wait for the process; with `check`, raise RuntimeError (with the output's tail) unless it exits 0."""
        self.launcher.wait()
        output = self.log.read_text(errors="replace")
        try:
            usage = json.loads(self.usage.read_text())
            result = None
            if self.result_file is not None and self.result_file.exists():
                result = json.loads(self.result_file.read_text())
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
        if check and usage["rc"] != 0:
            raise RuntimeError(f"{' '.join(self.cmd)} exited {usage['rc']}:\n{output[-3000:]}")
        return Measurement(usage["rc"], usage["wall"], usage["cpu"], usage["maxrss_kb"] / 1024, output, result)


def start(cmd: Sequence[Any], *, core: Optional[int] = None, log: Optional[Path] = None) -> Running:
    """Start `cmd` (str() of each item; pinned to CPU core `core` where given; output to `log` too where given)."""
    return Running([str(c) for c in cmd], core, log)


def measure(cmd: Sequence[Any], *, core: Optional[int] = None, log: Optional[Path] = None,
            check: bool = True) -> Measurement:
    """Run `cmd` to its end; see `start` and `Running.wait`."""
    return start(cmd, core=core, log=log).wait(check)


def start_call(target: str, args: Mapping[str, Any], *, core: Optional[int] = None,
               log: Optional[Path] = None) -> Running:
    """Start `module.function(**args)` in a fresh Python; `target` is "file.py:function" (a path,
    relative ones to bench/) or "package.module:function". Its JSON return value becomes the
    Measurement's `result`."""
    work = Path(tempfile.mkdtemp(prefix="harness_"))
    (work / "args.json").write_text(json.dumps(dict(args)))
    cmd = [sys.executable, str(Path(__file__).resolve()), "_call", target, str(work / "args.json"),
           str(work / "result.json")]
    return Running(cmd, core, log, work, work / "result.json")


def call(target: str, args: Mapping[str, Any], *, core: Optional[int] = None, log: Optional[Path] = None,
         check: bool = True) -> Measurement:
    """Run `start_call(target, args)` to its end."""
    return start_call(target, args, core=core, log=log).wait(check)


def _call_main(target: str, args_file: str, result_file: str) -> None:
    module_name, function = target.rsplit(":", 1)
    if module_name.endswith(".py"):
        path = Path(module_name) if Path(module_name).is_absolute() else Path(__file__).parent / module_name
        sys.path.insert(0, str(path.parent))
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_name)
    result = getattr(module, function)(**json.loads(Path(args_file).read_text()))
    tmp = Path(result_file + ".tmp")
    tmp.write_text(json.dumps(result))
    tmp.rename(result_file)


@dataclass
class Clock:
    wall: float = 0.0
    cpu: float = 0.0


@contextlib.contextmanager
def clock() -> Iterator[Clock]:
    """Wall and CPU seconds (this process) of the `with` block, set on exit."""
    timed = Clock()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timed
    finally:
        timed.wall, timed.cpu = time.perf_counter() - wall, time.process_time() - cpu


def rotate(items: Sequence[Any], repeat: int) -> List[Any]:
    """`items` rotated by `repeat`, so that no method always runs after the same one."""
    shift = repeat % len(items) if items else 0
    return list(items[shift:]) + list(items[:shift])


@contextlib.contextmanager
def scratch(prefix: str, keep: bool = False) -> Iterator[Path]:
    """A temporary folder, deleted afterwards unless `keep`."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        if keep:
            print(f"kept {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def head_sentences(source: Path, target: Path, n: int) -> Path:
    """The first `n` sentences (0: all) of a CoNLL/TSV file (a whitespace-only line ends one), lines as they are."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf8") as src, target.open("w", encoding="utf8") as dst:
        for line in src:
            dst.write(line)
            if not line.strip():
                n -= 1
                if n == 0:
                    break
    return target


@dataclass
class _Row:
    values: Dict[str, List[Tuple[Optional[Hashable], Any]]] = field(default_factory=dict)


class Results:
    """Measurements by (group, row); medians, and ratios against the `baseline` row of each group."""

    def __init__(self, baseline: Optional[str] = None, ratio_label: str = "x base", row_label: str = "method"):
        self.baseline, self.ratio_label, self.row_label = baseline, ratio_label, row_label
        self.rows: Dict[Tuple[str, str], _Row] = {}

    def add(self, row: str, group: str = "", pair: Optional[Hashable] = None,
            **values: Union[None, float, str]) -> None:
        """Record one measurement of `row` in `group`; `pair` keys the runs that ratios pair up.
        A str value is shown as it is (distinct values joined by "/"), never a median."""
        entry = self.rows.setdefault((group, row), _Row())
        for metric, value in values.items():
            if value is not None:
                entry.values.setdefault(metric, []).append((pair, value if isinstance(value, str) else float(value)))

    def values(self, row: str, metric: str, group: str = "") -> List[Any]:
        entry = self.rows.get((group, row))
        return [v for _, v in entry.values.get(metric, [])] if entry else []

    def median(self, row: str, metric: str, group: str = "") -> Optional[float]:
        values = self.values(row, metric, group)
        return statistics.median(values) if values else None

    def ratio(self, row: str, metric: str, group: str = "") -> Optional[float]:
        """`row` / baseline for `metric`: the median of per-pair ratios where they share pairs,
        else the ratio of the medians."""
        if self.baseline is None or (group, self.baseline) not in self.rows or (group, row) not in self.rows:
            return None
        mine = self.rows[(group, row)].values.get(metric, [])
        base = dict(p for p in self.rows[(group, self.baseline)].values.get(metric, []) if p[0] is not None)
        paired = [v / base[p] for p, v in mine if p in base and base[p]]
        if paired:
            return statistics.median(paired)
        top, bottom = self.median(row, metric, group), self.median(self.baseline, metric, group)
        return top / bottom if top is not None and bottom else None

    def table(self, columns: Mapping[str, str], ratios: Sequence[str] = ()) -> str:
        """A table of medians: one row per (group, row), a column per metric in `columns`
        (metric: format spec, e.g. {"wps": ",.0f"}), followed by its ratio for those in `ratios`."""
        from wasabi import table

        groups = any(group for group, _ in self.rows)
        header = (["group"] if groups else []) + [self.row_label, "n"]
        for metric in columns:
            header += [metric] + ([self.ratio_label] if metric in ratios else [])
        data = []
        for (group, row), entry in self.rows.items():
            n = max((len(v) for v in entry.values.values()), default=0)
            cells: List[Any] = ([group] if groups else []) + [row, n]
            for metric, spec in columns.items():
                texts = [v for v in self.values(row, metric, group) if isinstance(v, str)]
                value = "/".join(dict.fromkeys(texts)) if texts else self.median(row, metric, group)
                cells.append("-" if value is None else value if texts else format(value, spec))
                if metric in ratios:
                    r = self.ratio(row, metric, group)
                    cells.append("-" if r is None else f"{r:.2f}")
            data.append(cells)
        left = 2 if groups else 1
        aligns: List[Literal["l", "r"]] = ["l" if i < left else "r" for i in range(len(header))]
        return table(data, header=header, divider=True, aligns=aligns, max_col=40)

    def print(self, columns: Mapping[str, str], ratios: Sequence[str] = ()) -> None:
        print(self.table(columns, ratios))


def check(ok: bool, text: str) -> bool:
    """Print a target's verdict line and return `ok`."""
    print(f"  {'PASS' if ok else 'FAIL'}  {text}")
    return ok


def revision() -> str:
    """spaCy's version and the package's git commit ('+dirty' with uncommitted changes)."""
    import spacy
    import spacy_ner_trainer

    where = Path(spacy_ner_trainer.__file__).resolve().parent
    git = lambda *a: subprocess.run(["git", *a], cwd=where, capture_output=True, text=True).stdout.strip()  # noqa: E731
    head = git("rev-parse", "--short", "HEAD") or "(not a git checkout)"
    dirty = "+dirty" if git("status", "--porcelain", "--", ".") else ""
    return f"spaCy {spacy.__version__}, spacy-ner-trainer {head}{dirty}"


if __name__ == "__main__" and len(sys.argv) == 5 and sys.argv[1] == "_call":
    _call_main(*sys.argv[2:])
