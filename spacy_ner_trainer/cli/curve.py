"""`train-curve`: train on 25, 50, 75 and 100% of the data and say whether more data is likely to help."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

from ..curve import DEFAULT_FRACTIONS, CurveRow, train_curve
from ..loop import DEFAULT_N_ITER
from ..report import render_curve
from . import _show
from ._util import (Format, LabelMap, LabelsOpt, Lang, OnMisaligned, OnOverlap, Quiet, ReaderOptions, Scheme, app,
                    fails_cleanly, progress)

HEADER = ("%", "examples", "dev F", "change")
WIDTHS = (4, 8, 6, 8)


def curve_row(row: CurveRow) -> tuple:
    """("25%", examples, "0.412", "+0.031 ▲"): a printed row; the first run has no change."""
    if row.delta is None:
        change = ""
    else:
        change = f"{row.delta:+.3f} " + ("▲" if row.delta > 0 else "▼" if row.delta < 0 else "=")
    return (f"{row.fraction:.0%}", row.n_examples, f"{row.f:.3f}", change)


@app.command("train-curve")
@fails_cleanly
def train_curve_cli(
    train_path: Path = typer.Argument(..., help="Training data: a file or directory NerCorpus reads"),
    dev: Path = typer.Option(..., "--dev", help="Dev data, scored after every run"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Base pipeline, loaded afresh for every run: a package name or a path"),
    lang: Lang = "en",
    n_iter: int = typer.Option(DEFAULT_N_ITER, "--n-iter", "-n", help="Epochs at most, every run"),
    seed: int = typer.Option(0, "--seed", help="Random seed: the shuffle that picks each share, and every run"),
    format: Format = "auto",
    on_misaligned: OnMisaligned = "error",
    on_overlap: OnOverlap = "error",
    scheme: Scheme = "auto",
    labels: LabelsOpt = None,
    label_map: LabelMap = None,
    html: Optional[Path] = typer.Option(None, "--html", help="Write the curve as an HTML page here"),
    quiet: Quiet = False,
) -> None:
    """Train `ner` four times, on 25, 50, 75 and 100% of TRAIN (one seeded shuffle) with the
    same settings, print the dev F of each run and its change, and say whether more data of
    the same kind is likely to help: it is when dev F still rises in the last step."""
    reader = ReaderOptions(format, on_misaligned, on_overlap, scheme, labels, label_map)
    shares = ", ".join(f"{f:.0%}" for f in DEFAULT_FRACTIONS)
    msg.info(f"Training {len(DEFAULT_FRACTIONS)} times, on {shares} of {train_path}; scoring on {dev}")
    msg.row(HEADER, widths=WIDTHS)
    msg.row(["-" * w for w in WIDTHS], widths=WIDTHS)
    result = train_curve(reader.corpus(train_path), reader.corpus(dev), model=model, lang=lang, seed=seed,
                         n_iter=n_iter, progress=progress(quiet),
                         on_run=lambda row: msg.row(curve_row(row), widths=WIDTHS))
    if result.improved:
        msg.good(result.verdict)
    else:
        msg.warn(result.verdict)
    if html is not None:
        title = f"Learning curve: {model or 'blank ' + lang} on {train_path}"
        _show.write_page(html, render_curve(title=title, rows=[row.to_dict() for row in result.rows],
                                            verdict=result.verdict))
