"""The command line: `python -m spacy_ner_trainer train | verify | demo`."""
import tempfile
import traceback
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import spacy
import srsly
import typer
from spacy.language import Language
from wasabi import msg

from .loop import DEFAULT_DROPOUT, DEFAULT_N_ITER, train
from .readers import NerCorpus
from .save import check_output_dir, save_pipeline, write_atomically
from .verify import DEFAULT_MIN_RECALL, VerificationReport, verify

app = typer.Typer(
    name="spacy-ner-trainer",
    help="Train and check spaCy named-entity recognizers.",
    no_args_is_help=True,
    add_completion=False,
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
            msg.fail(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
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
    if report.n_mismatches:
        msg.text(f"{report.n_mismatches} of {report.n_examples} examples differ from the gold entities")
    if report.round_trip_ok is False:
        msg.fail(f"the reloaded pipeline predicts differently on {len(report.round_trip_diffs)} examples")
    if report.components_ok is False:
        msg.fail(f"other components' output changed on {len(report.component_diffs)} examples")


def _show_entities(nlp: Language, texts: List[str]) -> None:
    for text in texts:
        doc = nlp(text)
        print("Entities", [(ent.text, ent.label_) for ent in doc.ents])
        print("Tokens", [(t.text, t.ent_type_, t.ent_iob_) for t in doc])


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
    show_texts: Optional[List[str]] = None,
) -> bool:
    """The recipe's main(): train, report, save, reload and check again. Returns report.ok."""
    train_examples = list(train_data(nlp)) if callable(train_data) else train_data
    dev_examples = list(dev_data(nlp)) if callable(dev_data) else dev_data
    train(nlp, train_examples, dev_data=dev_examples, n_iter=n_iter, dropout=dropout, seed=seed,
          on_epoch=_print_epoch)
    if show_texts:
        _show_entities(nlp, show_texts)
    saved = None
    if output is not None:
        saved = save_pipeline(nlp, output)
        msg.good(f"Saved pipeline to {saved}")
    report = verify(nlp, train_examples, reference=reference, min_recall=min_recall,
                    round_trip=saved if saved is not None else True)
    _show_report("Training data", report)
    if dev_examples is not None:
        _show_report("Dev data", verify(nlp, dev_examples, min_recall=0.0, round_trip=False))
    if show_texts and saved is not None:
        msg.info(f"Loading from {saved}")
        _show_entities(spacy.load(saved), show_texts)
    if report.ok:
        msg.good(f"Verified: recall {report.recall:.3f} >= {min_recall}, same predictions after reloading")
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
    seed: int = typer.Option(0, "--seed", help="Random seed"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU id, or -1 for the CPU"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
    on_misaligned: str = typer.Option("error", "--on-misaligned", help="error, expand, contract or skip"),
    labels: Optional[str] = typer.Option(None, "--labels", help="Keep only these labels, comma-separated"),
    min_recall: float = typer.Option(DEFAULT_MIN_RECALL, "--min-recall", help="Recall on the training data that verification requires"),
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
    # The untouched pipeline, to check that training ner changed no other component's output.
    others = [name for name in nlp.pipe_names if name != "ner"]
    reference = spacy.load(model) if model is not None and others else None
    ok = run_recipe(nlp, corpus, dev_data=dev_corpus, output=output, reference=reference,
                    n_iter=n_iter, dropout=dropout, seed=seed, min_recall=min_recall)
    raise typer.Exit(0 if ok else 1)


@app.command("verify")
@_fails_cleanly
def verify_cli(
    model: str = typer.Argument(..., help="A saved pipeline: a package name or a path"),
    data: Path = typer.Argument(..., help="Gold data: a file or directory NerCorpus reads"),
    min_recall: float = typer.Option(DEFAULT_MIN_RECALL, "--min-recall", help="Recall that passes"),
    json_path: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON here"),
    format: str = typer.Option("auto", "--format", help="auto, tuples, spans, conll or docbin"),
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


def main() -> None:
    app(prog_name="python -m spacy_ner_trainer")
