"""Benchmark training with spacy-ner-trainer against spaCy's own route and the seed loop.

On wnut17 and bc5cdr (train -> test, ../shared/data), with one model (the `ner` of `spacy init
config -p ner -o efficiency`), the same epochs, dropout 0.5 (the seed loop's) and batch sizes
(compounding 4 -> 32 x1.001 examples, one schedule across epochs):

  (a)  `spacy train` on `spacy convert -c ner -n 1` output read by spacy.Corpus.v1, with
       spacy.batch_by_sequence.v1 (wnut17: converted from a copy whose TAB-only separator
       lines are made empty, else spaCy merges its 3,394 sentences into 1,000 docs)
  (b)  `spacy train` with this package's reader, labels, batcher and verify.v1 callback
  (b0) (b) without the callback, to price it
  (c)  `spacy_ner_trainer.train()`, on the same pipeline with ner's tok2vec listener replaced
       by its own copy of the tok2vec (the same layers)
  (d)  the seed loop, `../shared/reference/seed_loop_v3.py`, handed (c)'s pipeline initialized
       but untrained

Each run is a fresh process (bench/harness.py), one after another in an order that rotates
every repeat; repeat r trains with seed r ((d) has no seed). With --paired, (a) runs at the
same time as each other method instead, the two pinned to different cores (swapped every pair),
and x(a) is the median of those pairs' ratios. Columns (medians):

  w/s       training words / wall seconds of the training loop: (a)/(b) from the logger's setup
            to its finalize (the step-0 evaluation on --dev-limit test sentences included), (c)
            the whole train() call, (d) its own train_seconds
  cpu w/s   the same words / CPU seconds of that loop; proc cpu w/s: / CPU seconds of the process
  wall s, RSS MB   the process; P/R/F: its saved pipeline on the test file (%), medians over seeds

Targets (the issue): (b) and (c) >= 1.0x the words/s of (a); test F of (b) and (c) within 0.5
of (a) or above; the verify callback <= 5% of (b)'s wall time.

    python bench/bench_train.py --repeats 5 --epochs 4           # ~75 min
    python bench/bench_train.py --paired --methods a,b,c --repeats 5 --epochs 4   # ~40 min
    python bench/bench_train.py --quick                          # smoke run: 1 epoch, 300 examples
"""
import argparse
import contextlib
import io
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `spacy train --code` imports this file

import spacy  # noqa: E402
from spacy.cli.init_config import init_config  # noqa: E402
from spacy.language import Language  # noqa: E402
from spacy.training import Corpus  # noqa: E402
from spacy.util import fix_random_seed, load_model_from_config, registry  # noqa: E402
from thinc.api import Config, compounding  # noqa: E402

from harness import (CORPORA, DATA, ROOT, Measurement, Results, Running, check, clock, measure,  # noqa: E402
                     revision, rotate, scratch, start, start_call)

SEED_LOOP = ROOT / "shared" / "reference" / "seed_loop_v3.py"
LABELS = {"a": "(a) spacy train + Corpus.v1", "b": "(b) spacy train + plugin", "b0": "(b0) (b) w/o verify cb",
          "c": "(c) train()", "d": "(d) seed loop"}
DROPOUT = 0.5
SCHEDULE = (4.0, 32.0, 1.001)
EVAL_NEVER = 10**9  # eval_frequency: step 0 only
F_TOLERANCE = 0.5
CALLBACK_BUDGET = 0.05


@registry.loggers("bench_train.TimedConsoleLogger.v1")
def timed_console_logger(output_file: str) -> Callable:
    """spaCy's console logger, plus the wall and CPU seconds of the training loop."""
    console = registry.get("loggers", "spacy.ConsoleLogger.v1")(progress_bar=False)

    def setup(nlp: Language, stdout: Any = sys.stdout, stderr: Any = sys.stderr) -> Tuple[Callable, Callable]:
        log_step, finalize = console(nlp, stdout, stderr)
        timer = clock()
        loop = timer.__enter__()

        def done() -> None:
            finalize()
            timer.__exit__(None, None, None)
            Path(output_file).write_text(json.dumps({"loop_wall": loop.wall, "loop_cpu": loop.cpu}))

        return log_step, done

    return setup


# The spaCy route, shared with bench_best.py


def efficiency_config() -> Config:
    """`spacy init config -l en -p ner -o efficiency`."""
    return init_config(lang="en", pipeline=["ner"], optimize="efficiency")


def spacy_convert(source: Path, out_dir: Path) -> Path:
    """`spacy convert -c ner -n 1` of `source` (TAB/space-only lines made empty first)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    normalized = out_dir / source.name
    with source.open(encoding="utf8") as src, normalized.open("w", encoding="utf8") as dst:
        dst.writelines("\n" if not line.strip() else line for line in src)
    measure([sys.executable, "-m", "spacy", "convert", normalized, out_dir, "-c", "ner", "-n", "1"])
    return out_dir / (normalized.stem + ".spacy")


def corpus_v1(path: Path, limit: int = 0) -> Dict[str, Any]:
    return {"@readers": "spacy.Corpus.v1", "path": str(path), "max_length": 0, "gold_preproc": False,
            "limit": limit, "augmenter": None}


# Methods


def standalone_ner(config: Config) -> Language:
    """The config's pipeline, untrained, with ner holding its own copy of the tok2vec."""
    nlp = load_model_from_config(config.interpolate(), auto_fill=True)
    nlp.replace_listeners("tok2vec", "ner", ["model.tok2vec"])
    nlp.remove_pipe("tok2vec")
    return nlp


def train_config(method: str, prep: Dict[str, Any], args: argparse.Namespace, timing: Path, seed: int) -> Config:
    config = efficiency_config()
    config["training"].update({"max_epochs": args.epochs, "max_steps": 0, "patience": 0, "seed": seed,
                               "eval_frequency": EVAL_NEVER, "dropout": DROPOUT,
                               "logger": {"@loggers": "bench_train.TimedConsoleLogger.v1", "output_file": str(timing)}})
    sizes = dict(zip(("start", "stop", "compound"), SCHEDULE), **{"@schedules": "compounding.v1", "t": 0.0})
    if method == "a":
        config["corpora"] = {"train": corpus_v1(prep["a_train"], args.limit),
                             "dev": corpus_v1(prep["a_dev"], args.dev_limit)}
        config["training"]["batcher"] = {"@batchers": "spacy.batch_by_sequence.v1", "get_length": None, "size": sizes}
        return config
    reader = "spacy-ner-trainer.NerCorpus.v1"
    config["corpora"] = {"train": {"@readers": reader, "path": str(prep["train"]), "limit": args.limit},
                         "dev": {"@readers": reader, "path": str(prep["test"]), "limit": args.dev_limit}}
    config["initialize"]["components"]["ner"] = {"labels": {"@readers": "spacy-ner-trainer.ner_labels.v1",
                                                            "path": str(prep["train"])}}
    config["training"]["batcher"] = {"@batchers": "spacy-ner-trainer.shuffled_batches.v1", "seed": seed, "size": sizes}
    if method == "b":
        config["training"]["before_to_disk"] = {"@callbacks": "spacy-ner-trainer.verify.v1"}
    return config


def train_c(train: str, output: str, epochs: int, limit: int, seed: int) -> Dict[str, float]:
    """(c), in its own process: train() on the standalone ner, then save."""
    from spacy_ner_trainer import NerCorpus
    from spacy_ner_trainer import train as train_ner

    nlp = standalone_ner(efficiency_config())
    with clock() as loop:
        result = train_ner(nlp, NerCorpus(train, limit=limit), n_iter=epochs, dropout=DROPOUT,
                           batch_size=compounding(*SCHEDULE), seed=seed)  # one schedule across epochs
    nlp.to_disk(output)
    return {"loop_wall": loop.wall, "loop_cpu": loop.cpu, "words": result.n_words, "update_seconds": result.seconds}


def launch(method: str, prep: Dict[str, Any], args: argparse.Namespace, rdir: Path, seed: int,
           core: Optional[int]) -> Tuple[Running, Callable[[Measurement], Dict[str, Any]]]:
    """Start one method; returns the process and what turns its Measurement into the run's figures."""
    rdir.mkdir(parents=True)
    timing, model = rdir / "timing.json", rdir / "model"
    if method in ("a", "b", "b0"):
        train_config(method, prep, args, timing, seed).to_disk(rdir / "config.cfg")
        cmd = [sys.executable, "-m", "spacy", "train", rdir / "config.cfg", "--output", rdir / "out",
               "--code", Path(__file__).resolve()]
        words = prep["a_words" if method == "a" else "words"] * args.epochs
        return start(cmd, core=core), lambda m: dict(json.loads(timing.read_text()), words=words,
                                                       model=rdir / "out" / "model-last",
                                                       callback_calls=m.output.count("verify (train,"))
    if method == "c":
        running = start_call("bench_train.py:train_c", {"train": str(prep["train"]), "output": str(model),
                                                          "epochs": args.epochs, "limit": args.limit, "seed": seed},
                             core=core)
        return running, lambda m: dict(m.result, model=model)
    cmd = [sys.executable, SEED_LOOP, prep["seed_jsonl"], args.epochs, prep["init_model"], model]

    def seed_loop(m: Measurement) -> Dict[str, Any]:
        own = json.loads([line for line in m.output.splitlines() if line.startswith('{"train_seconds"')][-1])
        return {"loop_wall": own["train_seconds"], "loop_cpu": None, "words": own["words"], "model": model}

    return start(cmd, core=core), seed_loop


def prepare(name: str, args: argparse.Namespace, work: Path) -> Dict[str, Any]:
    """One corpus's files for every method, and its words per epoch."""
    from spacy_ner_trainer import NerCorpus

    train, _, test = (args.data / rel for rel in CORPORA[name])
    cdir = work / name
    a_train, a_dev = spacy_convert(train, cdir / "a-train"), spacy_convert(test, cdir / "a-test")
    nlp = standalone_ner(efficiency_config())
    examples = list(NerCorpus(train, limit=args.limit)(nlp))
    with (cdir / "train.jsonl").open("w", encoding="utf8") as out:  # the seed loop's tuples
        for eg in examples:
            ents = [[e.start_char, e.end_char, e.label_] for e in eg.reference.ents]
            out.write(json.dumps([eg.reference.text, {"entities": ents}], ensure_ascii=False) + "\n")
    fix_random_seed(0)
    nlp.initialize(lambda: examples)
    nlp.to_disk(cdir / "init-model")
    a_words = sum(len(eg.predicted) for eg in Corpus(a_train, limit=args.limit)(spacy.blank("en")))
    return {"train": train, "test": test, "a_train": a_train, "a_dev": a_dev, "seed_jsonl": cdir / "train.jsonl",
            "init_model": cdir / "init-model", "words": sum(len(eg.predicted) for eg in examples),
            "a_words": a_words, "sentences": len(examples)}


def test_scores(model: Path, test: Path, limit: int) -> Dict[str, float]:
    from spacy_ner_trainer import NerCorpus
    from spacy_ner_trainer.evaluate import evaluate

    nlp = spacy.load(model)
    scores = evaluate(nlp, NerCorpus(test, limit=limit)(nlp)).scores
    return {k: 100 * float(scores.get(f"ents_{k.lower()}") or 0.0) for k in "PRF"}


def callback_seconds(model: Path) -> float:
    """Seconds of one verify.v1 call (its first, which reads its samples) on a trained pipeline."""
    from spacy_ner_trainer import verify_callback_v1

    nlp = spacy.load(model)
    with clock() as timed, contextlib.redirect_stdout(io.StringIO()):
        verify_callback_v1()(nlp)
    return timed.wall


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--corpora", default="wnut17,bc5cdr")
    parser.add_argument("--methods", default=",".join(LABELS), help="comma-separated: a,b,b0,c,d")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--limit", type=int, default=0, help="training sentences (0: all)")
    parser.add_argument("--test-limit", type=int, default=0, help="test sentences scored (0: all)")
    parser.add_argument("--dev-limit", type=int, default=200, help="test sentences (a)/(b) evaluate at step 0")
    parser.add_argument("--paired", action="store_true", help="run (a) alongside each method, one core each")
    parser.add_argument("--quick", action="store_true", help="1 epoch, 300 training and test sentences")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.limit, args.test_limit = 1, args.limit or 300, args.test_limit or 300
    methods = args.methods.split(",")
    print(f"bench_train: {revision()}; {args.corpora}, methods {args.methods}, {args.epochs} epochs, "
          f"{args.repeats} repeats, limit {args.limit or 'none'}{', paired' if args.paired else ''}", flush=True)
    res = Results(baseline=LABELS["a"], ratio_label="x(a)")
    notes: List[str] = []
    ok, callback = True, {}
    with scratch("bench_train_", args.keep) as work:
        preps = {name: prepare(name, args, work) for name in args.corpora.split(",")}
        for name in preps:
            for m in methods:
                res.add(LABELS[m], group=name)  # rows in this order
        for repeat in range(args.repeats):
            for name, prep in preps.items():
                others = [m for m in rotate(methods, repeat) if not (args.paired and m == "a")]
                for j, method in enumerate(others):
                    core = (repeat + j) % 2 if args.paired else None
                    jobs = [(method, core)] + ([("a", 1 - core)] if args.paired and core is not None else [])
                    started = [(m, *launch(m, prep, args, work / name / f"{m}-{repeat}-{j}", repeat, c))
                               for m, c in jobs]
                    for m, running, finish in started:
                        measured = running.wait()
                        run = finish(measured)
                        f = test_scores(run["model"], prep["test"], args.test_limit)
                        res.add(LABELS[m], group=name, pair=(repeat, method) if args.paired else repeat,
                                P=f["P"], R=f["R"], F=f["F"], calls=run.get("callback_calls"),
                                update_share=run["update_seconds"] / run["loop_wall"] if m == "c" else None,
                                **{"w/s": run["words"] / run["loop_wall"], "proc cpu w/s": run["words"] / measured.cpu,
                                   "cpu w/s": run["words"] / run["loop_cpu"] if run["loop_cpu"] else None,
                                   "wall s": measured.wall, "RSS MB": measured.rss_mb})
                        print(f"  {name} {m} #{repeat}: {run['words'] / run['loop_wall']:,.0f} words/s, "
                              f"wall {measured.wall:.1f}s, F {f['F']:.1f}", flush=True)
                        if m == "b":
                            callback[name] = callback_seconds(run["model"])
        print()
        res.print({"w/s": ",.0f", "cpu w/s": ",.0f", "proc cpu w/s": ",.0f", "wall s": ".1f", "P": ".1f", "R": ".1f",
                   "F": ".1f", "RSS MB": ".0f"}, ratios=["w/s", "cpu w/s", "proc cpu w/s"])
        notes += [f"{name}: {prep['sentences']:,} training sentences, {prep['words']:,} words an epoch "
                  f"((a): {prep['a_words']:,})" for name, prep in preps.items()]
        print("\nTargets")
        for name in preps:
            def med(method: str, metric: str) -> float:
                return res.median(LABELS[method], metric, name) or 0.0

            for m in ("b", "c"):
                if (name, LABELS[m]) in res.rows and (name, LABELS["a"]) in res.rows:
                    ratio = res.ratio(LABELS[m], "w/s", name) or 0.0
                    ok &= check(ratio >= 1.0, f"{name} ({m}) words/s {ratio:.2f}x (a)")
                    ok &= check(med(m, "F") >= med("a", "F") - F_TOLERANCE,
                                f"{name} ({m}) test F {med(m, 'F'):.1f} vs (a) {med('a', 'F'):.1f}")
            if name in callback:
                share = callback[name] * med("b", "calls") / med("b", "wall s")
                ok &= check(share <= CALLBACK_BUDGET, f"{name} verify callback: {callback[name]:.2f}s a call (the first, "
                            f"which reads its samples) x {med('b', 'calls'):g} = {share:.1%} of (b)'s wall time")
            if (name, LABELS["c"]) in res.rows:
                notes.append(f"{name}: train() spent {med('c', 'update_share'):.1%} of its loop in nlp.update")
        for name in preps:
            notes.append(f"{name} test F per seed: " + "; ".join(
                f"{row} " + "/".join(f"{f:.1f}" for f in res.values(row, "F", name))
                for group, row in res.rows if group == name))
        print("\nNotes\n" + "\n".join(f"  - {line}" for line in notes))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
