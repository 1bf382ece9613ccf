"""Self-contained HTML reports: scores, confusion, mismatches in displaCy, training and learning curves."""
import html
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy import displacy

from .evaluate import Evaluation
from .semeval import SEMEVAL_HEADER, semeval_rows

# How a status is shown: a suffix on the displaCy label and its colour.
_MARKS = {
    "found": ("", "#a6e3a1"),
    "correct": ("", "#a6e3a1"),
    "missed": (" · missed", "#f38ba8"),
    "spurious": (" · spurious", "#fab387"),
    "wrong_label": (" · wrong label", "#cba6f7"),
    "boundary": (" · boundary", "#f9e2af"),
}

# No script and nothing fetched, whatever the data holds: inline styles and inline SVG only.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; overflow-wrap: anywhere; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.best td { font-weight: bold; background: #eef6ee; }
.failures li { color: #b00020; }
.example { border: 1px solid #ddd; border-radius: 6px; margin: 1em 0; padding: 0 1em; }
.example h3 { font-size: 0.9em; color: #555; margin: 0.6em 0 0; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border-radius: 4px; }
.entities { line-height: 2.6 !important; overflow-wrap: anywhere; }
/* A box is one piece: it never breaks at a line end, its label stays inside it. */
.entities mark.entity { display: inline-block; max-width: 100%; box-sizing: border-box; }
svg text { font-size: 12px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, sections: Iterable[str]) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(sections) + "\n</body></html>\n"
    )


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], classes: Optional[Sequence[str]] = None) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join(
        (f'<tr class="{_e(classes[i])}">' if classes and classes[i] else "<tr>")
        + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>"
        for i, row in enumerate(rows)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# The chart: an inline SVG with axes, ticks and values.

_W, _H = 720, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 60, 30, 50


def _nice_top(value: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten that is at least `value`."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value * (1 - 1e-9))


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _chart(
    xs: Sequence[float],
    x_ticks: Sequence[Tuple[float, str]],
    x_label: str,
    series: Sequence[Dict[str, Any]],
    *,
    marked: Optional[Tuple[float, str]] = None,
    point_values: bool = True,
) -> str:
    """Lines over shared x values. Each series: name, values (None where absent), colour,
    axis ("left" or "right"), top (the axis maximum; the axis starts at 0), fmt (a value's text).
    `marked` draws a dashed vertical line at an x with a caption. With `point_values`, each
    point is labelled with its value (above it, or below where the series says "below": True)."""
    x_lo, x_hi = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x_span = (x_hi - x_lo) or 1.0
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    inset = 24  # keeps the end points and their values clear of the y axes

    def px(x: float) -> float:
        return _LEFT + inset + (plot_w - 2 * inset) * ((x - x_lo) / x_span if x_hi > x_lo else 0.5)

    def py(v: float, top: float) -> float:
        return _TOP + plot_h - plot_h * (v / top)

    names = ", ".join(s["name"] for s in series)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" viewBox="0 0 {_W} {_H}" '
        f'role="img" aria-label="{_e(names)} by {_e(x_label)}">',
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#ccc"/>',
    ]
    # x axis: ticks and their labels.
    for x, text in x_ticks:
        parts.append(f'<line x1="{px(x):.1f}" y1="{_TOP + plot_h}" x2="{px(x):.1f}" y2="{_TOP + plot_h + 5}" '
                     'stroke="#444"/>')
        parts.append(f'<text x="{px(x):.1f}" y="{_TOP + plot_h + 18}" text-anchor="middle">{_e(text)}</text>')
    parts.append(f'<text x="{_LEFT + plot_w / 2:.0f}" y="{_H - 8}" text-anchor="middle">{_e(x_label)}</text>')
    # y axes: five steps from 0 to the top, labelled in the series' colour.
    for s in series:
        left = s["axis"] == "left"
        edge = _LEFT if left else _LEFT + plot_w
        tick = -5 if left else 5
        anchor = "end" if left else "start"
        for i in range(6):
            v = s["top"] * i / 5
            y = py(v, s["top"])
            parts.append(f'<line x1="{edge}" y1="{y:.1f}" x2="{edge + tick}" y2="{y:.1f}" stroke="{s["colour"]}"/>')
            if left and 0 < i < 5:
                parts.append(f'<line x1="{_LEFT}" y1="{y:.1f}" x2="{_LEFT + plot_w}" y2="{y:.1f}" stroke="#eee"/>')
            parts.append(f'<text x="{edge + 2 * tick}" y="{y + 4:.1f}" text-anchor="{anchor}" '
                         f'fill="{s["colour"]}">{_e(_fmt(v))}</text>')
        parts.append(f'<text x="{edge}" y="{_TOP - 10}" text-anchor="{anchor if left else "end"}" '
                     f'fill="{s["colour"]}">{_e(s["name"])}</text>')
    if marked is not None:
        x, caption = marked
        parts.append(f'<line x1="{px(x):.1f}" y1="{_TOP}" x2="{px(x):.1f}" y2="{_TOP + plot_h}" stroke="#555" '
                     'stroke-dasharray="4 3"/>')
        right_half = px(x) > _LEFT + plot_w / 2
        parts.append(f'<text x="{px(x) + (-4 if right_half else 4):.1f}" y="{_TOP + 14}" fill="#555" '
                     f'text-anchor="{"end" if right_half else "start"}">{_e(caption)}</text>')
    # The lines, then their points with the values.
    for s in series:
        points = [(px(x), py(v, s["top"]), v) for x, v in zip(xs, s["values"]) if v is not None]
        if not points:
            continue
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
        parts.append(f'<polyline fill="none" stroke="{s["colour"]}" stroke-width="2" points="{coords}"/>')
        for x, y, v in points:
            parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{s["colour"]}">'
                         f'<title>{_e(s["name"])}: {_e(s["fmt"](v))}</title></circle>')
            if point_values:
                parts.append(f'<text x="{x:.1f}" y="{y + (16 if s.get("below") else -7):.1f}" '
                             f'text-anchor="middle" fill="{s["colour"]}">'
                             f'{_e(s["fmt"](v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _integer_ticks(lo: int, hi: int) -> List[Tuple[float, str]]:
    step = max(1, math.ceil((hi - lo + 1) / 12))
    return [(float(i), str(i)) for i in range(lo, hi + 1, step)]


# train-curve


def render_curve(*, title: str, rows: Sequence[Dict[str, Any]], verdict: str) -> str:
    """The learning curve of `train-curve`: dev F against the share of the training data used.

    Args:
        title (str): the page heading, naming the model and the data.
        rows (Sequence[Dict[str, Any]]): one a run: "fraction" (0-1], "n_examples", "f" (dev F)
            and "delta" (F minus the previous row's; None on the first).
        verdict (str): what the curve says (does more data still help?), shown under the title.
    RETURNS (str): the HTML.
    """
    rows = sorted(rows, key=lambda r: r["fraction"])
    table = _table(
        ("share of training data", "examples", "dev F", "change"),
        [(f"{r['fraction']:.0%}", r["n_examples"], f"{r['f']:.3f}",
          "" if r.get("delta") is None else f"{r['delta']:+.3f}") for r in rows],
    )
    xs = [float(r["fraction"]) for r in rows]
    chart = _chart(
        xs, [(x, f"{x:.0%} ({r['n_examples']})") for x, r in zip(xs, rows)], "share of training data (examples)",
        [{"name": "dev F", "values": [r["f"] for r in rows], "colour": "#40a02b", "axis": "left", "top": 1.0,
          "fmt": lambda v: f"{v:.3f}"}],
    )
    return _page(title, [f"<h1>{_e(title)}</h1>", f'<p class="verdict"><strong>{_e(verdict)}</strong></p>',
                         "<h2>Learning curve</h2>", chart, table])


# Evaluations


def _score_table(evaluation: Evaluation) -> str:
    return _table(("label", "precision", "recall", "F", "support"), evaluation.score_rows())


def _confusion_table(evaluation: Evaluation) -> str:
    return _table(("gold label", "found", "missed", "wrong boundaries", "predicted as another label",
                   "spurious predictions"), evaluation.confusion_rows())


def _render(text: str, ents: List[List[Any]], title: str) -> str:
    parsed = {
        "text": text,
        # displaCy escapes the text but not the labels; the colour goes in as a parameter, so
        # that no label (nor a label that looks like another's status) picks the colour.
        "ents": [{"start": s, "end": e, "label": _e(f"{label}{_MARKS[status][0]}"),
                  "params": {"bg": _MARKS[status][1]}} for s, e, label, status in ents],
        "title": None,
    }
    return f"<h3>{_e(title)}</h3>" + displacy.render(parsed, style="ent", manual=True, page=False, jupyter=False)


def _legend() -> str:
    spans = "".join(
        f'<span style="background:{color}">{_e(name.strip(" ·") or "correct")}</span>'
        for name, color in (_MARKS[k] for k in ("found", "missed", "spurious", "wrong_label", "boundary"))
    )
    return f'<p class="legend">{spans}</p>'


def _examples(mismatches: List[Dict[str, Any]], max_examples: Optional[int], prefix: str = "") -> List[str]:
    shown = mismatches if max_examples is None else mismatches[:max_examples]
    out = []
    for i, mismatch in enumerate(shown, 1):
        out.append(
            f'<div class="example" id="{prefix}example-{i}">'
            + _render(mismatch["text"], mismatch["gold"], f"#{i} gold")
            + _render(mismatch["text"], mismatch["predicted"], f"#{i} predicted")
            + "</div>"
        )
    if len(shown) < len(mismatches):
        out.append(f"<p>{len(mismatches) - len(shown)} more mismatched examples not shown.</p>")
    return out


def _semeval(scores: Optional[Dict[str, Any]]) -> List[str]:
    """SemEval 2013's four ways of counting (strict, exact, partial, type), overall and per label."""
    if not scores:
        return []
    out = ["<h3>Partial matches (SemEval 2013)</h3>", _table(SEMEVAL_HEADER, semeval_rows(scores))]
    rows = [(label, *row) for label in scores.get("per_label") or {} for row in semeval_rows(scores, label)]
    if rows:
        out += ["<h3>Partial matches per label</h3>", _table(("label", *SEMEVAL_HEADER), rows)]
    return out


def _evaluation(evaluation: Evaluation, heading: str) -> List[str]:
    """Scores per label (and the unscored predictions), SemEval counts, confusion."""
    unscored = evaluation.unscored_line()
    return [
        f"<h2>{_e(heading)}</h2>",
        f"<p>{evaluation.n_examples} examples, {len(evaluation.mismatches)} with mismatched entities.</p>",
        _score_table(evaluation),
        *([f'<p class="unscored">{_e(unscored)}</p>'] if unscored else []),
        *_semeval(getattr(evaluation, "semeval", None)),
        "<h3>Confusion</h3>", _confusion_table(evaluation),
    ]


def _failures(failures: Sequence[str]) -> List[str]:
    if not failures:
        return []
    items = "".join(f"<li>{_e(line)}</li>" for line in failures)
    return [f'<h2>Failed checks</h2><ul class="failures">{items}</ul>']


def render_evaluation(
    evaluation: Evaluation, *, title: str, failures: Sequence[str] = (), max_examples: Optional[int] = None
) -> str:
    """The page of `evaluate` and `verify`: failed checks, scores per label, SemEval counts
    (when the evaluation has them), confusion, then every mismatched example, gold above
    prediction.

    Args:
        evaluation (Evaluation): what `evaluate` returned.
        title (str): the page heading, naming the model and the data.
        failures (Sequence[str]): one line a failed check (`VerificationReport.failures()`).
        max_examples (Optional[int]): render at most this many mismatched examples and count
            the rest; None renders every one.
    RETURNS (str): the HTML.
    """
    sections = [f"<h1>{_e(title)}</h1>", *_failures(failures), *_evaluation(evaluation, "Scores per label"),
                "<h2>Mismatched examples</h2>", _legend(), *_examples(evaluation.mismatches, max_examples)]
    return _page(title, sections)


def _epoch_table(epochs: Sequence[Dict[str, Any]], best_epoch: Optional[int]) -> str:
    labels = sorted({label for row in epochs if row.get("dev") for label in row["dev"].get("per_label") or {}})
    rows, classes = [], []
    for row in epochs:
        dev = row.get("dev")
        scores = [f"{dev[k]:.3f}" if dev and dev.get(k) is not None else "" for k in ("p", "r", "f")]
        per_label = (dev or {}).get("per_label") or {}
        label_f = [f"{per_label[label]['f']:.3f}" if label in per_label else "" for label in labels]
        best = row["epoch"] == best_epoch
        rows.append((row["epoch"], f"{row['loss']:.2f}", *scores, *label_f, f"{row['words_per_second']:,.0f}",
                     "best" if best else ""))
        classes.append("best" if best else "")
    return _table(("epoch", "loss", "dev P", "dev R", "dev F", *(f"{label} F" for label in labels), "words/s", ""),
                  rows, classes)


def _training_chart(epochs: Sequence[Dict[str, Any]], best_epoch: Optional[int]) -> str:
    xs = [float(row["epoch"]) for row in epochs]
    losses = [float(row["loss"]) for row in epochs]
    dev_f = [row["dev"]["f"] if row.get("dev") else None for row in epochs]
    series = [{"name": "loss", "values": losses, "colour": "#1e66f5", "axis": "left",
               "top": _nice_top(max(losses, default=0.0)), "fmt": lambda v: f"{v:.3g}", "below": True}]
    if any(v is not None for v in dev_f):
        series.append({"name": "dev F", "values": dev_f, "colour": "#40a02b", "axis": "right", "top": 1.0,
                       "fmt": lambda v: f"{v:.3f}"})
    marked = None
    if best_epoch is not None:
        best = next((row for row in epochs if row["epoch"] == best_epoch), None)
        score = f", dev F {best['dev']['f']:.3f}" if best and best.get("dev") else ""
        marked = (float(best_epoch), f"best: epoch {best_epoch}{score}")
    return _chart(xs, _integer_ticks(int(min(xs, default=1)), int(max(xs, default=1))), "epoch", series,
                  marked=marked, point_values=len(xs) <= 15)


def render_training(
    *,
    title: str,
    epochs: Sequence[Dict[str, Any]],
    best_epoch: Optional[int],
    train_evaluation: Evaluation,
    dev_evaluation: Optional[Evaluation] = None,
    retention: Optional[Dict[str, Dict[str, Any]]] = None,
    failures: Sequence[str] = (),
    max_examples: Optional[int] = None,
) -> str:
    """The page of `train`: failed checks, the loss and dev F per epoch (chart and table, the
    best epoch marked), the scores on the dev data and on the training sample, retention of
    the old labels, then the mismatched examples, dev first.

    Args:
        title (str): the page heading, naming the model and the data.
        epochs (Sequence[Dict[str, Any]]): `TrainResult.epochs`.
        best_epoch (Optional[int]): `TrainResult.best_epoch` (1-based; None without dev data).
        train_evaluation (Evaluation): the trained pipeline on a sample of the training data.
        dev_evaluation (Optional[Evaluation]): the saved (best) pipeline on the dev data.
        retention (Optional[Dict[str, Dict[str, Any]]]): per old label, agreement (p, r, f,
            support) with the pipeline before training (`VerificationReport.retention`).
        failures (Sequence[str]): one line a failed check.
        max_examples (Optional[int]): render at most this many mismatched examples of each
            evaluation and count the rest; None renders every one.
    RETURNS (str): the HTML.
    """
    sections = [f"<h1>{_e(title)}</h1>", *_failures(failures), "<h2>Training</h2>"]
    if best_epoch is not None:
        sections.append(f"<p>Best epoch {best_epoch} of {len(epochs)} (kept as model-best).</p>")
    if epochs:
        sections += [_training_chart(epochs, best_epoch), _epoch_table(epochs, best_epoch)]
    if dev_evaluation is not None:
        best = f" (model-best, epoch {best_epoch})" if best_epoch is not None else ""
        sections += ['<section id="dev">', *_evaluation(dev_evaluation, f"Dev data{best}"), "</section>"]
    sections += ['<section id="train">', *_evaluation(train_evaluation, "Training data (sample)"), "</section>"]
    if retention:
        rows = [(label, f"{s['p']:.3f}", f"{s['r']:.3f}", f"{s['f']:.3f}", s.get("support", ""))
                for label, s in sorted(retention.items())]
        sections += ["<h2>Retention: agreement with the pipeline before training, on held-back text</h2>",
                     _table(("old label", "precision", "recall", "F", "support"), rows)]
    sections += ["<h2>Mismatched examples</h2>", _legend()]
    if dev_evaluation is not None:
        sections += ["<h3>Dev data</h3>", *_examples(dev_evaluation.mismatches, max_examples, "dev-")]
    sections += ["<h3>Training data (sample)</h3>", *_examples(train_evaluation.mismatches, max_examples, "train-")]
    return _page(title, sections)
