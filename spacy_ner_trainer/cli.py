"""The command line: `python -m spacy_ner_trainer train | verify | demo | evaluate | debug | ...`."""
import sys
import tempfile
import traceback
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import spacy
import srsly
import typer
from spacy.language import Language
from tqdm import tqdm
from wasabi import msg, table

from .convert import convert_examples, target_for
from .debug import debug_data
from .init_config import make_config
from .labels import LOW_COUNT, count_labels, move_table
from .loop import DEFAULT_DROPOUT, DEFAULT_N_ITER, TrainResult, train
from .pipeline import ner_labels
from .report import render_html
from .readers import NerCorpus
from .save import check_output_dir, save_pipeline, write_atomically
from .verify import DEFAULT_MIN_RECALL, VerificationReport, verify

app = typer.Typer(
    name="spacy-ner-trainer",
    help="Train and check spaCy named-entity recognizers.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # "[initialize.components.ner.labels]" in help texts is not markup
)

# The recipe's training data.
DEMO_DATA = [
    ("Who is Shaka Khan?", {"entities": [(7, 17, "PERSON")]}),
    ("I like London and Berlin.", {"entities": [(7, 13, "LOC"), (18, 24, "LOC")]}),
]
DEMO_N_ITER = 100
DEMO_DROPOUT = 0.5


def _fails_cleanly(command: Callable) -> Callable:
    """Errors print one line and exit 2; --verbose adds the traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except typer.Exit:
            raise
        except (ValueError, OSError, KeyError, RuntimeError) as err:
            if kwargs.get("verbose"):
                traceback.print_exc()
            # One line, never wrapped: file:line stays whole.
            print("✘ " + (str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__))
            raise typer.Exit(2)

    return wrapper


def _load(model: Optional[str], lang: str) -> Language:
    if model is None:
        msg.info(f"Created blank '{lang}' pipeline")
        return spacy.blank(lang)
    nlp = spacy.load(model)
    msg.info(f"Loaded pipeline '{model}': {', '.join(nlp.pipe_names) or 'no components'}")
    return nlp


def _print_epoch(epoch: int, loss: float, scores: Optional[Dict[str, Any]]) -> None:
    header = ("epoch", "loss") + (("dev P", "dev R", "dev F") if scores else ())
    widths = (5, 10, 7, 7, 7)[: len(header)]
    if epoch == 0:
        msg.row(header, widths=widths)
        msg.row(["-" * w for w in widths], widths=widths)
    dev = [f"{scores[k]:.3f}" for k in ("ents_p", "ents_r", "ents_f")] if scores else []
    msg.row((epoch + 1, f"{loss:.2f}", *dev), widths=widths)


def _show_report(title: str, report: VerificationReport) -> None:
    msg.divider(title)
    print(report.table())
    if report.mismatches:
        msg.text(f"{len(report.mismatches)} of {report.n_examples} examples differ from the gold entities")
    if report.round_trip_ok is False:
        msg.fail(f"the reloaded pipeline predicts differently on {len(report.round_trip_diffs)} examples")
    if report.components_ok is False:
        msg.fail(f"other components' output changed on {len(report.component_diffs)} examples")


def _show_entities(nlp: Language, texts: List[str]) -> None:
    for text in texts:
        doc = nlp(text)
        print("Entities", [(ent.text, ent.label_) for ent in doc.ents])
        print("Tokens", [(t.text, t.ent_type_, t.ent_iob_) for t in doc])


def _progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def _write_html(path: Optional[Path], report: VerificationReport, title: str,
                result: Optional[TrainResult] = None) -> None:
    if path is None:
        return
    curves: Dict[str, Any] = {}
    if result is not None:
        curves = {"losses": result.losses, "dev_f": [s["ents_f"] for s in result.scores]}
    page = render_html(report.evaluation, title=title, **curves)
    write_atomically(path, lambda p: p.write_text(page, encoding="utf8"))
    msg.good(f"Wrote {path}")


def run_recipe(
    nlp: Language,
    train_data: Any,
    *,
    dev_data: Any = None,
    output: Optional[Path] = None,
    reference: Optional[Language] = None,
    n_iter: int,
    dropout: float,
    seed: int,
    min_recall: float,
    learn_rate: Optional[float] = None,
    show_texts: Optional[List[str]] = None,
    html: Optional[Path] = None,
    quiet: bool = False,
    rehearse: bool = False,
    rehearse_data: Optional[Path] = None,
    rehearse_ratio: float = 1.0,
) -> bool:
    """The recipe's main(): train, report, save, reload and check again. Returns report.ok."""
    train_examples = list(train_data(nlp)) if callable(train_data) else train_data
    dev_examples = list(dev_data(nlp)) if callable(dev_data) else dev_data
    result = train(nlp, train_examples, dev_data=dev_examples, n_iter=n_iter, dropout=dropout,
                   learn_rate=learn_rate, seed=seed, on_epoch=_print_epoch, progress=_progress(quiet),
                   rehearse=rehearse, rehearse_data=rehearse_data, rehearse_ratio=rehearse_ratio)
    if show_texts:
        _show_entities(nlp, show_texts)
    saved = None
    if output is not None:
        saved = save_pipeline(nlp, output)
        msg.good(f"Saved pipeline to {saved}")
    report = verify(nlp, train_examples, reference=reference, min_recall=min_recall,
                    round_trip=saved if saved is not None else True, retention=result.retention_examples)
    _show_report("Training data", report)
    if report.retention:
        msg.divider("Retention: agreement with the pipeline before training, on held-back text")
        print(table([(label, f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}", s["support"])
                     for label, s in sorted(report.retention.items())],
                    header=("old label", "P", "R", "F", "support"), divider=True))
    if dev_examples is not None:
        _show_report("Dev data", verify(nlp, dev_examples, min_recall=0.0, round_trip=False))
    _write_html(html, report, "Training report", result)
    if show_texts and saved is not None:
        msg.info(f"Loading from {saved}")
        _show_entities(spacy.load(saved), show_texts)
    if report.ok:
        msg.good(f"Verified: recall {report.recall:.3f} >= {min_recall}, same predictions after reloading"
                 + (", other components unchanged" if report.components_ok else ""))
    else:
        msg.fail(f"Verification failed: recall {report.recall:.3f} (minimum {min_recall})")
    return report.ok


@app.command("train")
@_fails_cleanly
def train_cli(
    train_path: Path = typer.Argument(..., help="Training data: a file or directory NerCorpus reads"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data, scored every epoch"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Base pipeline: a package name or a path"),
    lang: str = typer.Option("en", "--lang", help="Language of a blank pipeline, without --model"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Directory to save the trained pipeline to"),
    n_iter: int = typer.Option(DEFAULT_N_ITER, "--n-iter", "-n", help="Epochs"),
    dropout: float = typer.Option(DEFAULT_DROPOUT, "--dropout", help="Dropout rate"),
    learn_rate: Optional[float] = typer.Option(None, "--learn-rate", help="Learning rate (default: the optimizer's, 0.001); lower keeps more of a --model's old labels"),
    seed: int = typer.Option(0, "--seed", help="Random seed"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for the CPU"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
    on_misaligned: str = typer.Option("error", "--on-misaligned", help="error, expand, contract or skip"),
    labels: Optional[str] = typer.Option(None, "--labels", help="Keep only these labels, comma-separated"),
    min_recall: float = typer.Option(DEFAULT_MIN_RECALL, "--min-recall", help="Recall on the training data that verification requires"),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report here"),
    rehearse: Optional[bool] = typer.Option(None, "--rehearse/--no-rehearse", help="Keep the labels the --model's ner knows and the data lacks (default: on when there are such labels)"),
    rehearse_data: Optional[Path] = typer.Option(None, "--rehearse-data", help="Raw texts (lines, or JSONL with \"text\") the --model annotates to rehearse"),
    rehearse_ratio: float = typer.Option(1.0, "--rehearse-ratio", help="Rehearsed raw texts per training example, every epoch"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """Train `ner` on a pipeline, save it, reload it and verify it. Exits 0 only when
    verification passes."""
    if output is not None:
        check_output_dir(output)
    if gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    keep = [label.strip() for label in labels.split(",") if label.strip()] if labels else None
    corpus = NerCorpus(train_path, format=format, on_misaligned=on_misaligned, labels=keep)
    dev_corpus = NerCorpus(dev, format=format, on_misaligned=on_misaligned, labels=keep) if dev else None
    nlp = _load(model, lang)
    forgotten = sorted(ner_labels(nlp) - set(count_labels(corpus)))
    if rehearse is None:
        rehearse = bool(forgotten)
    if rehearse and forgotten:
        msg.info(f"Rehearsing {', '.join(forgotten)}: the data lacks labels the model knows "
                 "(--no-rehearse turns this off)")
    elif rehearse:
        msg.warn("Nothing to rehearse: the data has every label the model knows")
    # The untouched pipeline, to check that training ner changed no other component's output.
    others = [name for name in nlp.pipe_names if name != "ner"]
    reference = spacy.load(model) if model is not None and others else None
    ok = run_recipe(nlp, corpus, dev_data=dev_corpus, output=output, reference=reference,
                    n_iter=n_iter, dropout=dropout, learn_rate=learn_rate, seed=seed,
                    min_recall=min_recall, html=html, quiet=quiet, rehearse=rehearse, rehearse_data=rehearse_data,
                    rehearse_ratio=rehearse_ratio)
    raise typer.Exit(0 if ok else 1)


@app.command("verify")
@_fails_cleanly
def verify_cli(
    model: str = typer.Argument(..., help="A saved pipeline: a package name or a path"),
    data: Path = typer.Argument(..., help="Gold data: a file or directory NerCorpus reads"),
    min_recall: float = typer.Option(DEFAULT_MIN_RECALL, "--min-recall", help="Recall that passes"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON here"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report here"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """Verify a saved pipeline on gold data: per-label scores, mismatches, the disk round trip.
    Exits 0 only when verification passes."""
    nlp = spacy.load(model)
    report = verify(nlp, NerCorpus(data, format=format), min_recall=min_recall)
    _show_report(str(data), report)
    if json_path is not None:
        write_atomically(json_path, lambda p: srsly.write_json(p, report.to_dict()))
        msg.good(f"Wrote {json_path}")
    _write_html(html, report, f"Verification of {model} on {data}")
    raise typer.Exit(0 if report.ok else 1)


@app.command("demo")
@_fails_cleanly
def demo_cli(
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Directory to save the demo pipeline to"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """The recipe on its two embedded sentences: train a blank English `ner`, print what it
    finds, save, reload and print again."""
    with tempfile.TemporaryDirectory() as tmp:
        target = output if output is not None else Path(tmp) / "demo-model"
        if output is not None:
            check_output_dir(output)
        ok = run_recipe(spacy.blank("en"), DEMO_DATA, output=target, n_iter=DEMO_N_ITER,
                        dropout=DEMO_DROPOUT, seed=0, min_recall=1.0,
                        show_texts=[text for text, _ in DEMO_DATA])
    raise typer.Exit(0 if ok else 1)


def _read(path: Path, nlp: Language, format: str, quiet: bool) -> List[Any]:
    examples = NerCorpus(path, format=format)(nlp)
    return list(tqdm(examples, desc=f"reading {path.name}", unit=" examples", leave=False,
                     disable=not _progress(quiet)))


@app.command("evaluate")
@_fails_cleanly
def evaluate_cli(
    model: str = typer.Argument(..., help="A saved pipeline: a package name or a path"),
    data: Path = typer.Argument(..., help="Gold data: a file or directory NerCorpus reads"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write scores and confusion as JSON here"),
    html: Optional[Path] = typer.Option(None, "--html", help="Write an HTML report here"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """Per-label precision, recall, F and support, and where the errors are: for each gold
    label how often it was found, missed, cut at other boundaries or given another label, and
    the spurious predictions per label."""
    nlp = spacy.load(model)
    report = verify(nlp, _read(data, nlp, format, quiet), min_recall=0.0, round_trip=False)
    _show_report(str(data), report)
    msg.divider("Confusion")
    print(table(report.evaluation.confusion_rows(), divider=True,
                header=("gold label", "found", "missed", "boundary", "as other label", "spurious")))
    if json_path is not None:
        data_out = {k: v for k, v in report.to_dict().items() if k not in ("round_trip_ok", "round_trip_diffs",
                                                                        "components_ok", "component_diffs", "ok", "min_recall")}
        write_atomically(json_path, lambda p: srsly.write_json(p, data_out))
        msg.good(f"Wrote {json_path}")
    _write_html(html, report, f"Evaluation of {model} on {data}")


@app.command("debug")
@_fails_cleanly
def debug_cli(
    data: Path = typer.Argument(..., help="Training data: a file or directory NerCorpus reads"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Pipeline whose tokenizer the spans must fit"),
    lang: str = typer.Option("en", "--lang", help="Language of a blank tokenizer, without --model"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data, checked for overlap with the training data"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """List every misaligned, overlapping and whitespace-bordered span with file:line and the
    fix, label counts, sentence lengths, duplicates and conflicting annotations, and with --dev
    the overlap of train and dev. Exits 1 when it found errors."""
    nlp = _load(model, lang)
    report = debug_data(nlp, data, format=format, dev=dev, progress=_progress(quiet))
    msg.divider(f"{data}: {report.n_examples} examples")
    for problem in report.problems:
        # One line each, never wrapped, so that file:line can be grepped and clicked.
        print(("✘ " if problem.severity == "error" else "⚠ ") + str(problem))
    if not report.problems:
        msg.good("Every span is aligned, none overlaps, none has whitespace at its edges")
    msg.divider("Labels")
    print(table([(label, n) for label, n in report.labels.items()], header=("label", "entities"), divider=True))
    for label, n in report.low_labels.items():
        msg.warn(f"label {label} has only {n} examples; aim for at least {LOW_COUNT}")
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
        msg.fail(f"{len(report.errors)} errors and {len(report.conflicts)} conflicting annotations")
    raise typer.Exit(0 if report.ok else 1)


@app.command("labels")
@_fails_cleanly
def labels_cli(
    data: Path = typer.Argument(..., help="Training data: a file or directory NerCorpus reads"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the label table JSON here"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """Label counts, and the JSON that [initialize.components.ner.labels] with
    spacy.read_labels.v1 accepts."""
    counts = count_labels(NerCorpus(data, format=format))
    print(table(list(counts.items()), header=("label", "entities"), divider=True))
    for label, n in counts.items():
        if n < LOW_COUNT:
            msg.warn(f"label {label} has only {n} examples; aim for at least {LOW_COUNT}")
    if output is not None:
        write_atomically(output, lambda p: srsly.write_json(p, move_table(counts)))
        msg.good(f"Wrote {output}")


@app.command("convert")
@_fails_cleanly
def convert_cli(
    input_path: Path = typer.Argument(..., help="Data in any format NerCorpus reads"),
    output: Path = typer.Argument(..., help="The file to write: .spacy or .jsonl"),
    to: Optional[str] = typer.Option(None, "--to", help="spacy or jsonl; default from the output's suffix"),
    lang: str = typer.Option("en", "--lang", help="Language of the tokenizer for character offsets"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
    on_misaligned: str = typer.Option("error", "--on-misaligned", help="error, expand, contract or skip"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """Convert NER data to a .spacy DocBin or span JSONL, written atomically."""
    target_for(output, to)
    nlp = spacy.blank(lang)
    examples = tqdm(NerCorpus(input_path, format=format, on_misaligned=on_misaligned)(nlp),
                    unit=" examples", leave=False, disable=not _progress(quiet))
    count = convert_examples(examples, output, to)
    msg.good(f"Wrote {count} examples to {output}")


@app.command("init-config")
@_fails_cleanly
def init_config_cli(
    output: Path = typer.Argument(..., help="The config file to write"),
    train_path: Path = typer.Option(..., "--train", help="Training data"),
    dev: Optional[Path] = typer.Option(None, "--dev", help="Dev data"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Base pipeline: ner sourced from it, the rest frozen"),
    lang: str = typer.Option("en", "--lang", help="Language of a new pipeline, without --model"),
    gpu: bool = typer.Option(False, "--gpu", help="GPU settings (a transformer, with spacy-transformers)"),
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks"),
) -> None:
    """Write a complete spaCy config using this package's reader, labels reader, batcher and
    verify callback; `python -m spacy train OUTPUT` runs it unchanged."""
    config = make_config(train_path, dev, model=model, lang=lang, gpu=gpu)
    write_atomically(output, config.to_disk)
    msg.good(f"Wrote {output}", f"Train with: python -m spacy train {output} --output training/")


def main() -> None:
    app(prog_name="python -m spacy_ner_trainer")
