"""What every command shares: the app, options defined once, clean failures, printing helpers."""
import sys
import traceback
from functools import wraps
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import typer
from typing_extensions import Annotated
from wasabi import msg, table

from ..checkpoint import CheckpointError
from ..errors import NerDataError, UsageError
from ..readers import NerCorpus

app = typer.Typer(
    name="spacy-ner-trainer",
    help="Train and check spaCy named-entity recognizers.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,  # "[initialize.components.ner.labels]" in help texts is not markup
)
STATE: Dict[str, bool] = {"verbose": False}

# Data and I/O problems a user can fix: one line and exit 2. Anything else is a bug and shows
# its traceback.
USER_ERRORS = (NerDataError, UsageError, CheckpointError, OSError)


def fails_cleanly(command: Callable) -> Callable:
    """Data and I/O errors print one line and exit 2; --verbose adds the traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as err:
            if STATE["verbose"]:
                traceback.print_exc()
            # One line, never wrapped: file:line stays whole.
            text = str(err).strip()
            print("✘ " + (text.splitlines()[0] if text else type(err).__name__))
            raise typer.Exit(2)

    return wrapper


# Options shared by commands, defined once.
Format = Annotated[str, typer.Option("--format", help="auto, tuples, spans, conll or docbin")]
OnMisaligned = Annotated[str, typer.Option("--on-misaligned", help="A span off token boundaries: error, expand, contract or skip")]
OnOverlap = Annotated[str, typer.Option("--on-overlap", help="Overlapping spans: error, longest or skip")]
Scheme = Annotated[str, typer.Option("--scheme", help="CoNLL tag scheme: auto, iob1, iob2 or biluo")]
LabelsOpt = Annotated[Optional[str], typer.Option("--labels", help="Keep and score only these labels, comma-separated (default: every label in the data; predictions of labels the gold data lacks are listed apart, not scored)")]
LabelMap = Annotated[Optional[str], typer.Option("--label-map", help="Rename labels: old=NEW,old2=NEW2")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars")]
GpuId = Annotated[int, typer.Option("--gpu-id", "-g", help="GPU id, or -1 for the CPU")]
Lang = Annotated[str, typer.Option("--lang", help="Language of a blank pipeline, without --model")]


class ReaderOptions:
    """The reader's options as the commands take them, for NerCorpus."""

    def __init__(self, format: str = "auto", on_misaligned: str = "error", on_overlap: str = "error",
                 scheme: str = "auto", labels: Optional[str] = None, label_map: Optional[str] = None):
        self.kwargs: Dict[str, Any] = {"format": format, "on_misaligned": on_misaligned,
                                       "on_overlap": on_overlap, "scheme": scheme}
        self.labels = [label.strip() for label in labels.split(",") if label.strip()] if labels else None
        if self.labels:
            self.kwargs["labels"] = self.labels
        if label_map:
            pairs = [item.split("=", 1) for item in label_map.split(",") if item.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise UsageError(f"--label-map {label_map!r}: give old=NEW pairs separated by commas")
            self.kwargs["label_map"] = {old.strip(): new.strip() for old, new in pairs}

    def corpus(self, path: Path) -> NerCorpus:
        return NerCorpus(path, **self.kwargs)


def progress(quiet: bool) -> bool:
    return not quiet and sys.stderr.isatty()


def print_rows(rows: List[tuple], header: tuple) -> None:
    print(table(rows, header=header, divider=True))


@app.callback(invoke_without_command=True)
def main_options(
    ctx: typer.Context,
    verbose: bool = typer.Option(False, "--verbose", "-V", help="Show tracebacks of errors"),
    version: bool = typer.Option(False, "--version", help="Print the version and exit"),
) -> None:
    """Train and check spaCy named-entity recognizers."""
    from .. import __version__

    STATE["verbose"] = verbose
    if version:
        print(__version__)
        raise typer.Exit(0)
    if ctx.invoked_subcommand is None:
        print(ctx.get_help())
        raise typer.Exit(0)


def good(text: str) -> None:
    msg.good(text)
