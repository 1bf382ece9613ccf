"""`debug`, `labels` and `convert`: look at NER data and turn it into other formats."""
from pathlib import Path
from typing import Optional

import spacy
import srsly
import typer
from tqdm import tqdm
from wasabi import msg, table

from ..convert import convert_examples, target_for
from ..debug import debug_data
from ..labels import check_label_filter, low_count_message, move_table
from ..save import write_atomically
from ..workflow import load_pipeline
from ._util import (Format, LabelMap, LabelsOpt, Lang, OnMisaligned, OnOverlap, Quiet, ReaderOptions, Scheme, app,
                    fails_cleanly, progress)


@app.command("debug")
@fails_cleanly
def debug_cli(
    data: Path = typer.Argument(..., help="Training data: a file or directory NerCorpus reads"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Pipeline whose tokenizer the spans must fit"),
    lang: Lang = "en",
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data, checked for overlap with the training data"),
    format: Format = "auto",
    on_misaligned: OnMisaligned = "error",
    on_overlap: OnOverlap = "error",
    scheme: Scheme = "auto",
    labels: LabelsOpt = None,
    label_map: LabelMap = None,
    quiet: Quiet = False,
) -> None:
    """List every misaligned, overlapping and whitespace-bordered span with file:line and the
    fix, label counts, skipped records, sentence lengths, duplicates and conflicting
    annotations, and with --dev the overlap of train and dev. Exits 1 when it found errors."""
    reader = ReaderOptions(format, on_misaligned, on_overlap, scheme, labels, label_map)
    nlp = load_pipeline(model, lang)
    report = debug_data(nlp, data, dev=dev, progress=progress(quiet), **reader.kwargs)
    msg.divider(f"{data}: {report.n_examples} examples")
    for problem in report.problems:
        # One line each, never wrapped, so that file:line can be grepped and clicked.
        print(("✘ " if problem.severity == "error" else "⚠ ") + str(problem))
    if not report.problems:
        msg.good("Every span is aligned, none overlaps, none has whitespace at its edges")
    for line in report.skipped:
        print("ℹ " + line)
    msg.divider("Labels")
    print(table([(label, n) for label, n in report.labels.items()], header=("label", "entities"), divider=True))
    for message in (report.labels_unmatched, report.low_count_message):
        if message:
            print("⚠ " + message)
    stats = report.length_stats()
    if stats:
        msg.info("Tokens per example: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    msg.info(f"{report.duplicates} duplicate examples (same text)")
    for first, second in report.conflicts:
        print(f"✘ {second}: same text as {first} with other annotations; keep one")
    if dev is not None:
        (msg.warn if report.dev_in_train else msg.good)(
            f"{len(report.dev_in_train)} of {report.dev_examples} dev examples are also in the training data"
            + (f" (first: {', '.join(report.dev_in_train[:5])})" if report.dev_in_train else ""))
    if not report.ok:
        msg.fail(f"{len(report.errors)} errors and {len(report.conflicts)} conflicting annotations"
                 + ("; no entity matches the labels filter" if report.nothing_matched else ""))
    raise typer.Exit(0 if report.ok else 1)


@app.command("labels")
@fails_cleanly
def labels_cli(
    data: Path = typer.Argument(..., help="Training data: a file or directory NerCorpus reads"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the label table JSON here"),
    format: Format = "auto",
    on_misaligned: OnMisaligned = "error",
    on_overlap: OnOverlap = "error",
    scheme: Scheme = "auto",
    labels: LabelsOpt = None,
    label_map: LabelMap = None,
) -> None:
    """Label counts, and the JSON that [initialize.components.ner.labels] with
    spacy.read_labels.v1 accepts."""
    reader = ReaderOptions(format, on_misaligned, on_overlap, scheme, labels, label_map)
    counts = check_label_filter(reader.corpus(data))
    print(table(list(counts.items()), header=("label", "entities"), divider=True))
    message = low_count_message(counts, str(data))
    if message:
        print("⚠ " + message)
    if output is not None:
        write_atomically(output, lambda p: srsly.write_json(p, move_table(counts)))
        msg.good(f"Wrote {output}")


@app.command("convert")
@fails_cleanly
def convert_cli(
    input_path: Path = typer.Argument(..., help="Data in any format NerCorpus reads"),
    output: Path = typer.Argument(..., help="The file to write: .spacy or .jsonl"),
    to: Optional[str] = typer.Option(None, "--to", help="spacy or jsonl; default from the output's suffix"),
    lang: Lang = "en",
    format: Format = "auto",
    on_misaligned: OnMisaligned = "error",
    on_overlap: OnOverlap = "error",
    scheme: Scheme = "auto",
    labels: LabelsOpt = None,
    label_map: LabelMap = None,
    quiet: Quiet = False,
) -> None:
    """Convert NER data to a .spacy DocBin or span JSONL, written atomically."""
    target_for(output, to)
    reader = ReaderOptions(format, on_misaligned, on_overlap, scheme, labels, label_map)
    examples = tqdm(reader.corpus(input_path)(spacy.blank(lang)), unit=" examples", leave=False,
                    disable=not progress(quiet))
    count = convert_examples(examples, output, to)
    msg.good(f"Wrote {count} examples to {output}")
