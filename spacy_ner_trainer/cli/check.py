"""`verify` and `evaluate`: score and check a saved pipeline on gold data."""
from pathlib import Path
from typing import Optional

import spacy
import srsly
import typer
from tqdm import tqdm
from wasabi import msg, table

from ..gpu import require
from ..report import render_evaluation
from ..save import write_atomically
from ..verify import DEFAULT_MIN_RECALL, verify
from . import _show
from ._util import (Format, GpuId, LabelMap, LabelsOpt, OnMisaligned, OnOverlap, Quiet, ReaderOptions, Scheme, app,
                    fails_cleanly, progress)


@app.command("verify")
@fails_cleanly
def verify_cli(
    model: str = typer.Argument(..., help="A saved pipeline: a package name or a path"),
    data: Path = typer.Argument(..., help="Gold data: a file or directory NerCorpus reads"),
    min_recall: float = typer.Option(DEFAULT_MIN_RECALL, "--min-recall", help="Recall that passes (default 0: not checked, since scores on real data vary; the recipe's check on its training data uses 1.0)"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON here"),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report here"),
    gpu_id: GpuId = -1,
    format: Format = "auto",
    on_misaligned: OnMisaligned = "error",
    on_overlap: OnOverlap = "error",
    scheme: Scheme = "auto",
    labels: LabelsOpt = None,
    label_map: LabelMap = None,
    quiet: Quiet = False,
) -> None:
    """Verify a saved pipeline on gold data: per-label scores, mismatches, the disk round trip
    and the recall check. Exits 0 only when every check passes, else 1 with one line a check."""
    reader = ReaderOptions(format, on_misaligned, on_overlap, scheme, labels, label_map)
    nlp, examples = _load(model, data, reader, gpu_id, quiet)
    report = verify(nlp, examples, min_recall=min_recall, labels=reader.labels, data_name=str(data))
    _show.report(str(data), report, partial=True)
    if json_path is not None:
        write_atomically(json_path, lambda p: srsly.write_json(p, report.to_dict()))
        msg.good(f"Wrote {json_path}")
    if html:
        _show.write_page(html, render_evaluation(report.evaluation, title=f"Verification of {model} on {data}",
                                                 failures=report.failures()))
    ok = _show.failures(report.failures())
    if ok:
        _show.verified(report)
    raise typer.Exit(0 if ok else 1)


def _load(model: str, path: Path, reader: ReaderOptions, gpu_id: int, quiet: bool) -> tuple:
    """The saved pipeline (on the GPU asked for) and the gold examples, read with its tokenizer."""
    if gpu_id >= 0:
        require(gpu_id)
    nlp = spacy.load(model)
    examples = tqdm(reader.corpus(path)(nlp), desc=f"reading {path.name}", unit=" examples", leave=False,
                    disable=not progress(quiet))
    return nlp, list(examples)


@app.command("evaluate")
@fails_cleanly
def evaluate_cli(
    model: str = typer.Argument(..., help="A saved pipeline: a package name or a path"),
    data: Path = typer.Argument(..., help="Gold data: a file or directory NerCorpus reads"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write scores and confusion as JSON here"),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report here"),
    gpu_id: GpuId = -1,
    format: Format = "auto",
    on_misaligned: OnMisaligned = "error",
    on_overlap: OnOverlap = "error",
    scheme: Scheme = "auto",
    labels: LabelsOpt = None,
    label_map: LabelMap = None,
    quiet: Quiet = False,
) -> None:
    """Per-label precision, recall, F and support, and where the errors are: for each gold
    label how often it was found, missed, cut at other boundaries or given another label, and
    the spurious predictions per label."""
    reader = ReaderOptions(format, on_misaligned, on_overlap, scheme, labels, label_map)
    nlp, examples = _load(model, data, reader, gpu_id, quiet)
    report = verify(nlp, examples, round_trip=False, labels=reader.labels,
                    data_name=str(data))
    evaluation = report.evaluation
    _show.report(str(data), report, partial=True)
    msg.divider("Confusion")
    print(table(evaluation.confusion_rows(), divider=True,
                header=("gold label", "found", "missed", "boundary", "as other label", "spurious")))
    if json_path is not None:
        scores = {"n_examples": report.n_examples, "precision": report.precision, "recall": report.recall,
                  "f": report.f, "per_label": evaluation.per_label, "unscored": evaluation.unscored,
                  "confusion": evaluation.confusion, "spurious": evaluation.spurious,
                  "n_mismatches": len(evaluation.mismatches), "mismatches": report.to_dict()["mismatches"],
                  **evaluation.partial_matches()}
        write_atomically(json_path, lambda p: srsly.write_json(p, scores))
        msg.good(f"Wrote {json_path}")
    if html:
        _show.write_page(html, render_evaluation(evaluation, title=f"Evaluation of {model} on {data}"))
