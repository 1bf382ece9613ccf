"""Benchmark the NerCorpus.v1 reader against the simplest floor and spaCy's own route.

What it measures
----------------
Files (train splits of ../shared/data, concatenated in a temp dir, each file followed by one
blank line):

  conll03-size   bc5cdr train + ncbi-disease train: 9,984 sentences, 253,871 tokens, about the
                 size of CoNLL-2003 train (~204k tokens, ~15k sentences). The file the target is on.
  --each         also each train split alone (wnut17, ncbi-disease, bc5cdr).
  --rss          also the three concatenated once ("all 1x") and 50 times ("all 50x", ~130 MB):
                 (a)'s peak RSS must stay flat.

Rows, each run in a fresh Python (bench/harness.py's `call`), which iterates the corpus with a
`for` loop, keeping nothing, and times only that loop (imports and `spacy.blank("en")` left out):

  (a) NerCorpus.v1       spacy_ner_trainer.ner_corpus_v1(path)(nlp)
  floor                  issue #15's floor, the baseline of the ratios: split each line; a blank
                         line ends a sentence; per sentence doc = Doc(nlp.vocab, words=words),
                         doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(tags)),
                         Example(Doc(nlp.vocab, words=words), doc)
  floor ents=tags        the earlier floor: Example(Doc(vocab, words), Doc(vocab, words, ents=tags))
  (b) Corpus.v1          spacy.training.Corpus(path.spacy)(nlp), reading `spacy convert -c ner -n 1`
                         output (converted once a file, before the repeats)
  (b) spacy convert      that conversion, as `python -m spacy convert` runs it (--convert-runs
                         times; default 1), and "(b) convert+read", the two added up

The rows' order rotates every repeat. Columns are medians over the repeats; "x floor" is the
median over repeats of the row's throughput / the floor's in the same repeat (the machine is
shared and drifts; a repeat's runs are made close together), from wall seconds (ex/s) and from
the process's CPU seconds (ex/CPU s), which other load disturbs less.

Targets: (a) >= 0.80x the floor's throughput on conll03-size (issue #15), by wall and by CPU
time; with --rss, (a)'s peak RSS on all 50x <= 1.2x its peak RSS on all 1x.

Run (from the repository root)
---
    python bench/bench_readers.py                   # conll03-size, 5 repeats (~2 min)
    python bench/bench_readers.py --each --rss      # every file, and the 50x memory check
    python bench/bench_readers.py --core 1          # pin every run to CPU core 1
"""
import argparse
import contextlib
import io
import re
import runpy
import sys
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from harness import CORPORA, DATA, Results, call, check, clock, revision, rotate, scratch

READER, FLOOR, FLOOR_TAGS, CORPUS, CONVERT, BOTH = (
    "(a) NerCorpus.v1", "floor", "floor ents=tags", "(b) Corpus.v1", "(b) spacy convert", "(b) convert+read")
READS = {READER: "reader", FLOOR: "floor", FLOOR_TAGS: "floor_tags", CORPUS: "corpus"}
CONLL03, ALL_1X, ALL_50X = "conll03-size", "all 1x", "all 50x"
TARGET, RSS_TARGET = 0.8, 1.2


# ---------------------------------------------------------------------------------------------
# In the measured process


def floor_corpus(path: Path) -> Callable:
    """Issue #15's floor: the fewest steps from a CoNLL file to gold Examples with spaCy's own
    functions."""
    from spacy.tokens import Doc
    from spacy.training import Example, biluo_tags_to_spans, iob_to_biluo

    def corpus(nlp) -> Iterator:
        vocab = nlp.vocab

        def example(words: List[str], tags: List[str]) -> Example:
            doc = Doc(vocab, words=words)
            doc.ents = biluo_tags_to_spans(doc, iob_to_biluo(tags))
            return Example(Doc(vocab, words=words), doc)

        words: List[str] = []
        tags: List[str] = []
        with path.open(encoding="utf8") as file_:
            for line in file_:
                cols = line.split()
                if cols:
                    words.append(cols[0])
                    tags.append(cols[-1])
                elif words:
                    yield example(words, tags)
                    words, tags = [], []
        if words:
            yield example(words, tags)

    return corpus


def floor_tags_corpus(path: Path) -> Callable:
    """The earlier floor: the gold Doc built from the IOB tags by Doc(ents=tags)."""
    from spacy.tokens import Doc
    from spacy.training import Example

    def corpus(nlp) -> Iterator:
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


def read(method: str, path: str) -> Dict[str, float]:
    """One row's reading of `path`, timed: what `call` runs in a fresh process."""
    import spacy
    from spacy.training import Corpus

    from spacy_ner_trainer import ner_corpus_v1

    nlp = spacy.blank("en")
    makers: Dict[str, Callable[[], Callable]] = {
        "reader": lambda: ner_corpus_v1(path),
        "floor": lambda: floor_corpus(Path(path)),
        "floor_tags": lambda: floor_tags_corpus(Path(path)),
        "corpus": lambda: Corpus(path),
    }
    count = 0
    with clock() as timed:
        for _ in makers[method]()(nlp):
            count += 1
    return {"examples": count, "wall": timed.wall, "cpu": timed.cpu}


def convert(path: str, out_dir: str) -> Dict[str, float]:
    """`python -m spacy convert PATH OUT_DIR -c ner -n 1`, run as that command runs it, timed."""
    import spacy.cli  # noqa: F401  (imported before the clock starts)

    argv, sys.argv = sys.argv, ["spacy", "convert", path, out_dir, "-c", "ner", "-n", "1"]
    printed = io.StringIO()
    try:
        with clock() as timed, contextlib.redirect_stdout(printed):
            runpy.run_module("spacy", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            raise RuntimeError(f"spacy convert failed ({exit_.code}):\n{printed.getvalue()}")
    finally:
        sys.argv = argv
    written = re.search(r"\((\d+) documents\)", printed.getvalue())
    if written is None:
        raise RuntimeError(f"spacy convert wrote no file:\n{printed.getvalue()}")
    return {"examples": int(written.group(1)), "wall": timed.wall, "cpu": timed.cpu}


# ---------------------------------------------------------------------------------------------
# The driver


def concatenate(files: Sequence[Path], target: Path, times: int = 1) -> Path:
    """The files, each followed by one blank line, `times` times over."""
    block = "".join(f.read_text(encoding="utf8").rstrip("\n") + "\n\n" for f in files)
    with target.open("w", encoding="utf8") as out:
        for _ in range(times):
            out.write(block)
    return target


def make_files(work: Path, each: bool, rss: bool) -> Dict[str, Path]:
    train = {name: DATA / splits[0] for name, splits in CORPORA.items()}
    missing = [str(p) for p in train.values() if not p.is_file()]
    if missing:
        sys.exit(f"missing corpora: {', '.join(missing)}")
    files = {CONLL03: concatenate([train["bc5cdr"], train["ncbi-disease"]], work / "conll03_size.tsv")}
    if each:
        files.update(train)
    if rss:
        files[ALL_1X] = concatenate(list(train.values()), work / "all_1x.tsv")
        files[ALL_50X] = concatenate(list(train.values()), work / "all_50x.tsv", 50)
    return files


def add(res: Results, row: str, group: str, repeat: int, result: Dict[str, float], rss_mb: float) -> None:
    res.add(row, group=group, pair=repeat, examples=result["examples"], s=result["wall"],
            cpu_s=result["cpu"], **{"ex/s": result["examples"] / result["wall"],
                                    "ex/CPU s": result["examples"] / result["cpu"]}, rss_mb=rss_mb)


def measure_all(files: Dict[str, Path], work: Path, repeats: int, convert_runs: int,
                core: Optional[int]) -> Results:
    res = Results(baseline=FLOOR, ratio_label="x floor")
    converted: Dict[str, Path] = {}
    conversions: Dict[str, List[Tuple[float, float]]] = {}
    for name, path in files.items():
        if name == ALL_50X:  # spaCy's ner converter on 130 MB: hours; (b) is not the point there
            continue
        out_dir = work / "converted" / name.replace(" ", "_")
        out_dir.mkdir(parents=True)
        for run in range(convert_runs):
            m = call("bench_readers.py:convert", {"path": str(path), "out_dir": str(out_dir)}, core=core)
            add(res, CONVERT, name, run, m.result, m.rss_mb)
            conversions.setdefault(name, []).append((m.result["wall"], m.result["cpu"]))
            print(f"  {name:<13} {CONVERT:<18} {m.result['wall']:7.2f} s", file=sys.stderr, flush=True)
        converted[name] = out_dir / (path.stem + ".spacy")
    for repeat in range(repeats):
        for name, path in files.items():
            rows = [READER, FLOOR, FLOOR_TAGS] + ([CORPUS] if name in converted else [])
            if name == ALL_50X:
                rows = [READER]
            for row in rotate(rows, repeat):
                source = converted[name] if row == CORPUS else path
                m = call("bench_readers.py:read", {"method": READS[row], "path": str(source)}, core=core)
                add(res, row, name, repeat, m.result, m.rss_mb)
                if row == CORPUS:  # paired with a conversion of the same file
                    wall, cpu = conversions[name][repeat % len(conversions[name])]
                    both = dict(m.result, wall=m.result["wall"] + wall, cpu=m.result["cpu"] + cpu)
                    add(res, BOTH, name, repeat, both, m.rss_mb)
                print(f"  [{repeat + 1}/{repeats}] {name:<13} {row:<18} {m.result['examples']:>7} examples "
                      f"{m.result['wall']:7.2f} s {m.result['cpu']:7.2f} CPU s {m.rss_mb:7.1f} MB",
                      file=sys.stderr, flush=True)
    return res


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each row (medians; default 5)")
    parser.add_argument("--each", action="store_true", help="also each shared train split alone")
    parser.add_argument("--rss", action="store_true", help="also (a) on all 1x and all 50x: peak RSS")
    parser.add_argument("--convert-runs", type=int, default=1, help="conversions of each file (default 1)")
    parser.add_argument("--core", type=int, default=None, help="pin every run to this CPU core")
    args = parser.parse_args(argv)
    with scratch("bench_readers_") as work:
        files = make_files(work, args.each, args.rss)
        res = measure_all(files, work, args.repeats, args.convert_runs, args.core)
    print(f"\nNER corpus readers: {revision()}; nlp = spacy.blank('en'); {args.repeats} repeats, medians; "
          f"s and CPU s: the reading loop only (the process's start, imports and spacy.blank left out)")
    res.print({"examples": ",.0f", "s": ".2f", "cpu_s": ".2f", "ex/s": ",.0f", "ex/CPU s": ",.0f",
               "rss_mb": ",.1f"}, ratios=["ex/s", "ex/CPU s"])
    print("(b) spacy convert splits no sentence on wnut17train's TAB-only lines: fewer, longer examples.\n")
    print("targets")
    ok = True
    for metric, what in (("ex/s", "wall"), ("ex/CPU s", "CPU")):
        ratio = res.ratio(READER, metric, group=CONLL03)
        ok &= check(ratio is not None and ratio >= TARGET,
                    f"{CONLL03}: (a) / floor throughput by {what} time {ratio or 0:.2f}x, target >= {TARGET:.2f}x")
    if args.rss:
        one, fifty = res.median(READER, "rss_mb", group=ALL_1X), res.median(READER, "rss_mb", group=ALL_50X)
        ok &= check(one is not None and fifty is not None and fifty <= RSS_TARGET * one,
                    f"(a) peak RSS {ALL_50X} / {ALL_1X}: {fifty or 0:.1f} / {one or 0:.1f} MB, "
                    f"target <= {RSS_TARGET:.2f}x")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
