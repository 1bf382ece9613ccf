"""`train` and `demo`: train ner on a pipeline, save model-best and model-last, verify."""
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, List, Optional

import spacy
import typer
from wasabi import msg

from ..loop import DEFAULT_N_ITER, DEFAULT_PATIENCE, NEW_LABEL_MARGIN, TrainingInterrupted
from ..report import render_training
from ..rehearse import DEFAULT_DISTILL_RATIO, DEFAULT_RATIO
from ..workflow import CHECKPOINT, MODEL_LAST, TrainingRun, resume_command, train_pipeline
from . import _show
from ._util import (Format, GpuId, LabelMap, LabelsOpt, Lang, OnMisaligned, OnOverlap, Quiet, ReaderOptions,
                    Scheme, app, fails_cleanly, progress)

# The recipe's training data.
DEMO_DATA = [
    ("Who is Shaka Khan?", {"entities": [(7, 17, "PERSON")]}),
    ("I like London and Berlin.", {"entities": [(7, 13, "LOC"), (18, 24, "LOC")]}),
]
DEMO_N_ITER = 100
DEMO_DROPOUT = 0.5


@app.command("train")
@fails_cleanly
def train_cli(
    train_path: Path = typer.Argument(..., help="Training data: a file or directory NerCorpus reads"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data, scored every epoch; picks model-best"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Base pipeline: a package name or a path"),
    lang: Lang = "en",
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Directory for model-best, model-last, metrics.jsonl and checkpoints: new, empty, or an earlier output of this command"),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output from its checkpoint (same command otherwise)"),
    n_iter: int = typer.Option(DEFAULT_N_ITER, "--n-iter", "-n", help="Epochs at most"),
    patience: int = typer.Option(DEFAULT_PATIENCE, "--patience", help="Stop after this many epochs without a dev improvement (0: never)"),
    dropout: Optional[float] = typer.Option(None, "--dropout", help="Dropout rate (default: 0.1 for a new ner, 0.2 for a --model's trained ner)"),
    learn_rate: Optional[float] = typer.Option(None, "--learn-rate", help="Learning rate (default: 0.001 for a new ner and for the copy of a kept one, 0.0003 for a --model's ner fine-tuned itself)"),
    average: Optional[bool] = typer.Option(None, "--average/--no-average", help="Keep only the moving averages of the weights (thinc's use_averages), or only the weights (default: a new ner with --dev keeps whichever scores better each epoch; a --model's trained ner, the weights)"),
    seed: int = typer.Option(0, "--seed", help="Random seed"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="A fixed batch size (default: compounding 100 -> 1,000 words or 4 -> 32 examples on the CPU, see --batch-unit; 2000 words on a GPU)"),
    batch_unit: Optional[str] = typer.Option(None, "--batch-unit", help="What --batch-size counts: examples or words (spaCy's batch_by_words); default words for a new ner trained on 1,000 examples or more and on a GPU, else examples"),
    buffer_size: Optional[int] = typer.Option(None, "--buffer-size", help="Stream the data through a shuffle buffer of this many examples; 0 holds it in memory (default: stream training files over 32 MB)"),
    gpu_id: GpuId = -1,
    format: Format = "auto",
    on_misaligned: OnMisaligned = "error",
    on_overlap: OnOverlap = "error",
    scheme: Scheme = "auto",
    labels: LabelsOpt = None,
    label_map: LabelMap = None,
    min_recall: float = typer.Option(0.0, "--min-recall", help="Recall on a sample of the training data that verification requires (default 0: not checked; real corpora are rarely learned whole, the recipe's two sentences are)"),
    name: Optional[str] = typer.Option(None, "--name", help="meta.json name of the trained pipeline"),
    version: Optional[str] = typer.Option(None, "--version", help="meta.json version of the trained pipeline"),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report here"),
    keep_original: Optional[bool] = typer.Option(None, "--keep-original/--no-keep-original", help="Leave the --model's ner unchanged and train a copy of it, 'ner_new', placed before it (default: on when the ner knows labels the data lacks and --rehearse is not given)"),
    new_label_margin: float = typer.Option(NEW_LABEL_MARGIN, "--new-label-margin", help="With the original kept: the margin the copy's score for a new-label entity needs, so text unlike the training data keeps more of the original's entities (0: none)"),
    original_margin: Optional[float] = typer.Option(None, "--original-margin", help="With the original kept: how sure (a margin) the original must be of an entity for 'ner_confident' to set it before the copy runs (default: calibrated on the training data; inf: no such pass)"),
    rehearse: Optional[bool] = typer.Option(None, "--rehearse/--no-rehearse", help="Train the --model's ner itself and rehearse the labels it knows and the data lacks (default: on when there are such labels and the original is not kept)"),
    rehearse_data: Optional[Path] = typer.Option(None, "--rehearse-data", help="Raw texts (lines, or JSONL with \"text\") the --model annotates to rehearse"),
    rehearse_ratio: float = typer.Option(DEFAULT_RATIO, "--rehearse-ratio", help="Silver examples (the --model's predictions on --rehearse-data) per training example, every epoch"),
    rehearse_distill: float = typer.Option(DEFAULT_DISTILL_RATIO, "--rehearse-distill", help="--rehearse-data texts distilled per training example, with every batch"),
    quiet: Quiet = False,
) -> None:
    """Train `ner` on a pipeline, save OUTPUT/model-last (and model-best, the best dev epoch),
    reload and verify. Exits 0 only when every check passes; SIGINT/SIGTERM save a checkpoint
    that --resume continues from."""
    reader = ReaderOptions(format, on_misaligned, on_overlap, scheme, labels, label_map)
    meta = {k: v for k, v in (("name", name), ("version", version)) if v is not None}
    try:
        with _signals_stop_the_command():
            run = train_pipeline(
                reader.corpus(train_path), model=model, lang=lang, dev_data=reader.corpus(dev) if dev else None,
                output=output, resume=resume, meta=meta, min_recall=min_recall, labels=reader.labels,
                on_epoch=_show.epoch_row, n_iter=n_iter, patience=patience, dropout=dropout, learn_rate=learn_rate,
                average=average, seed=seed, batch_size=batch_size, batch_unit=batch_unit, buffer_size=buffer_size, gpu_id=gpu_id,
                progress=progress(quiet), keep_original=keep_original, new_label_margin=new_label_margin,
                original_margin=original_margin, rehearse=rehearse, rehearse_data=rehearse_data,
                rehearse_ratio=rehearse_ratio, rehearse_distill=rehearse_distill)
    except (TrainingInterrupted, _Stopped) as stopped:
        # train() has just written its checkpoint; outside the epochs, the last one counts.
        where = stopped.checkpoint if isinstance(stopped, TrainingInterrupted) else \
            (output / CHECKPOINT if output is not None and (output / CHECKPOINT).exists() else None)
        if where is None:
            print(f"⚠ Interrupted ({signal.Signals(stopped.signum).name}) before the first checkpoint; "
                  "nothing to resume: run the command again")
        else:
            # One line, never wrapped: the command can be copied whole.
            print(f"⚠ Interrupted: checkpoint saved to {where}; resume with: {resume_command()}")
        raise typer.Exit(128 + stopped.signum)
    base = f"'{model}'" if model else f"a blank '{lang}' pipeline"
    ok = _show_run(run, html, f"Training report: {base} trained on {train_path}" + (f", dev {dev}" if dev else ""))
    raise typer.Exit(0 if ok else 1)


class _Stopped(Exception):
    """SIGINT or SIGTERM outside the epochs (while loading, saving or verifying)."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@contextmanager
def _signals_stop_the_command() -> Iterator[None]:
    """SIGINT and SIGTERM end the command with the one line and exit code that an interruption
    inside the epochs gets (train() handles those itself, after the current batch)."""

    def stop(signum: int, frame: Any) -> None:
        raise _Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _show_run(run: TrainingRun, html: Optional[Path], title: str, texts: Optional[List[str]] = None) -> bool:
    """Print what a training run did; True when every check passed."""
    result = run.result
    if result.kept:
        first = f"; '{result.confident}', another copy, sets the entities it is sure of first (margin " \
            f"{result.confident_margin:g})" if result.confident else ""
        msg.info(f"Kept 'ner' unchanged, with {', '.join(result.kept)}; '{result.trained}', a copy of it placed "
                 f"before it, learned the data{first} (--no-keep-original trains the ner itself)")
    if result.rehearsed:
        msg.info(f"Rehearsed {', '.join(result.rehearsed)} (--no-rehearse turns this off)")
    _show.training_summary(result)
    for key, path in run.saved.items():
        msg.good(f"Saved {key} to {path}")
    _show.report(f"Training data ({run.train_report.n_examples} examples sampled)", run.train_report)
    _show.retention(run.train_report)
    if run.dev_report is not None:
        _show.report("Dev data" + (f" (model-best, epoch {result.best_epoch})" if result.best_epoch else ""),
                     run.dev_report)
    if texts:
        _show_entities(run.nlp, texts)
        if MODEL_LAST in run.saved:
            msg.info(f"Loading from {run.saved[MODEL_LAST]}")
            _show_entities(spacy.load(run.saved[MODEL_LAST]), texts)
    if html:
        _show.write_page(html, render_training(
            title=title, epochs=result.epochs, best_epoch=result.best_epoch,
            train_evaluation=run.train_report.evaluation,
            dev_evaluation=run.dev_report.evaluation if run.dev_report else None,
            retention=run.train_report.retention, failures=run.failures))
    ok = _show.failures(run.failures)
    if ok:
        _show.verified(run.train_report)
    return ok


def _show_entities(nlp: spacy.language.Language, texts: List[str]) -> None:
    for text in texts:
        doc = nlp(text)
        print("Entities", [(ent.text, ent.label_) for ent in doc.ents])
        print("Tokens", [(t.text, t.ent_type_, t.ent_iob_) for t in doc])


@app.command("demo")
@fails_cleanly
def demo_cli(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Directory to save the demo's model-last to"),
) -> None:
    """The recipe on its two embedded sentences: train a blank English `ner`, print what it
    finds, save, reload and print again."""
    with tempfile.TemporaryDirectory() as tmp:
        run = train_pipeline(DEMO_DATA, output=output if output is not None else Path(tmp) / "demo",
                             min_recall=1.0, n_iter=DEMO_N_ITER, dropout=DEMO_DROPOUT, seed=0,
                             on_epoch=_show.epoch_row)
        ok = _show_run(run, None, "demo", texts=[text for text, _ in DEMO_DATA])
    raise typer.Exit(0 if ok else 1)
