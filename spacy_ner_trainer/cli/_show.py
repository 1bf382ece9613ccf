"""How the commands print a training run and a verification report."""
from pathlib import Path
from typing import Any, Dict, List, Optional

from wasabi import msg, table

from ..loop import TrainResult
from ..save import write_atomically
from ..semeval import SEMEVAL_HEADER, semeval_rows
from ..verify import ROUND_TRIP_EXAMPLES, VerificationReport


def epoch_row(row: Dict[str, Any]) -> None:
    """One line an epoch: loss, dev P/R/F, words/s, and * on the best epoch so far."""
    header = ("epoch", "loss", "dev P", "dev R", "dev F", "words/s", "")
    widths = (5, 10, 7, 7, 7, 8, 1)
    if row["epoch"] == 1 or not getattr(epoch_row, "shown", False):
        msg.row(header, widths=widths)
        msg.row(["-" * w for w in widths], widths=widths)
        epoch_row.shown = True  # type: ignore[attr-defined]
    dev = row["dev"]
    scores = [f"{dev[k]:.3f}" for k in ("p", "r", "f")] if dev else ["", "", ""]
    msg.row((row["epoch"], f"{row['loss']:.2f}", *scores, f"{row['words_per_second']:,.0f}",
             "*" if row.get("best") else ""), widths=widths)


def report(title: str, report: VerificationReport, partial: bool = False) -> None:
    msg.divider(title)
    print(report.table())
    if partial and report.evaluation.semeval:
        msg.divider("Partial matches (SemEval-2013 task 9.1, as nervaluate)")
        print(table(semeval_rows(report.evaluation.semeval), header=SEMEVAL_HEADER, divider=True))
    if report.mismatches:
        msg.text(f"{len(report.mismatches)} of {report.n_examples} examples differ from the gold entities")


def retention(report: VerificationReport) -> None:
    if not report.retention:
        return
    msg.divider("Retention: agreement with the pipeline before training, on held-back text")
    print(table([(label, f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}", s["support"])
                 for label, s in sorted(report.retention.items())],
                header=("old label", "P", "R", "F", "support"), divider=True))


def failures(lines: List[str]) -> bool:
    """Print each failed check on one line; True when there were none."""
    for line in lines:
        print("✘ " + line)  # one line, never wrapped
    return not lines


def verified(report: VerificationReport) -> None:
    """The line for a report whose checks all passed: what was checked, on how many examples."""
    compared = min(report.n_examples, ROUND_TRIP_EXAMPLES)
    msg.good(f"Verified: same predictions after reloading ({compared} examples compared)"
             + (", other components unchanged" if report.components_ok else "")
             + (f", recall {report.recall:.3f} >= {report.min_recall}" if report.min_recall else ""))


def training_summary(result: TrainResult) -> None:
    if result.best_epoch is None:
        return
    averaged = [row.get("averaged") for row in result.epochs]
    which = ""
    if {True, False} <= set(averaged):  # both kinds won an epoch: say which one is kept
        which = " (averaged weights)" if averaged[result.best_epoch - 1] else " (weights, not their averages)"
    line = f"Best epoch {result.best_epoch} of {len(result.epochs)}: dev F {result.best_score:.3f}{which}" \
        + (" (stopped early: no dev improvement)" if result.stopped_early else "")
    if result.best_score:
        msg.good(line)
        return
    # Nothing found on the dev data yet: say what usually helps.
    hints = ["more epochs (--n-iter)"] + (["--patience 0, so that epochs at F 0 do not stop it"]
                                         if result.stopped_early else [])
    if result.kept:
        hints.append("--new-label-margin 0 (a copy trained this little seldom wins by the new-label margin)")
    msg.warn(line, "The model finds none of the dev entities yet. Try " + ", ".join(hints) + ".")


def write_page(path: Optional[Path], page: str) -> None:
    if path is None:
        return
    write_atomically(path, lambda p: p.write_text(page, encoding="utf8"))
    msg.good(f"Wrote {path}")
