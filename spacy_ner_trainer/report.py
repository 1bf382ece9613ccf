"""A self-contained HTML report: per-label table, confusion, mismatches in displaCy, training curves."""
import html
from typing import Any, List, Optional, Sequence

from spacy import displacy

from .evaluate import Evaluation

# How a status is shown: a suffix on the displaCy label and its colour.
_MARKS = {
    "found": ("", "#a6e3a1"),
    "correct": ("", "#a6e3a1"),
    "missed": (" · missed", "#f38ba8"),
    "spurious": (" · spurious", "#fab387"),
    "wrong_label": (" · wrong label", "#cba6f7"),
    "boundary": (" · boundary", "#f9e2af"),
}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.example { border: 1px solid #ddd; border-radius: 6px; margin: 1em 0; padding: 0 1em; }
.example h3 { font-size: 0.9em; color: #555; margin: 0.6em 0 0; }
.legend span { display: inline-block; padding: 2px 8px; margin-right: 6px; border-radius: 4px; }
.entities { line-height: 2.2 !important; }
"""


def _table(header: Sequence[str], rows: List[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _score_table(evaluation: Evaluation) -> str:
    return _table(("label", "precision", "recall", "F", "support"), evaluation.score_rows())


def _confusion_table(evaluation: Evaluation) -> str:
    return _table(("gold label", "found", "missed", "wrong boundaries", "predicted as another label",
                   "spurious predictions"), evaluation.confusion_rows())


def _render(text: str, ents: List[List[Any]], title: str) -> str:
    parsed = {
        "text": text,
        "ents": [{"start": s, "end": e, "label": f"{label}{_MARKS[status][0]}"} for s, e, label, status in ents],
        "title": None,
    }
    colors = {f"{label}{_MARKS[status][0]}": _MARKS[status][1] for _, _, label, status in ents}
    return f"<h3>{html.escape(title)}</h3>" + displacy.render(
        parsed, style="ent", manual=True, page=False, jupyter=False, options={"colors": colors}
    )


def _chart(losses: Sequence[float], dev_f: Sequence[Optional[float]]) -> str:
    """Loss (left axis) and dev F (right axis, 0-1) per epoch as an inline SVG."""
    width, height, pad = 640, 240, 40
    n = max(len(losses), 1)

    def x(i: int) -> float:
        return pad + (width - 2 * pad) * (i / max(n - 1, 1))

    top = max(losses) if losses and max(losses) > 0 else 1.0

    def points(values: Sequence[Optional[float]], scale: float) -> str:
        return " ".join(
            f"{x(i):.1f},{height - pad - (height - 2 * pad) * (v / scale):.1f}"
            for i, v in enumerate(values) if v is not None
        )

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="training curves">',
        f'<rect x="{pad}" y="{pad}" width="{width - 2 * pad}" height="{height - 2 * pad}" fill="none" stroke="#ccc"/>',
        f'<polyline fill="none" stroke="#1e66f5" stroke-width="2" points="{points(losses, top)}"/>',
        f'<text x="{pad}" y="{pad - 8}" font-size="12" fill="#1e66f5">loss (max {top:.2f})</text>',
        f'<text x="{width / 2:.0f}" y="{height - 10}" font-size="12" text-anchor="middle">epoch 1 to {n}</text>',
    ]
    if any(v is not None for v in dev_f):
        parts.append(f'<polyline fill="none" stroke="#40a02b" stroke-width="2" points="{points(dev_f, 1.0)}"/>')
        parts.append(f'<text x="{width - pad}" y="{pad - 8}" font-size="12" fill="#40a02b" text-anchor="end">dev F (0 to 1)</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(
    evaluation: Evaluation,
    *,
    title: str,
    losses: Optional[Sequence[float]] = None,
    dev_f: Optional[Sequence[Optional[float]]] = None,
    max_examples: Optional[int] = None,
) -> str:
    """One self-contained page (inline CSS and SVG, nothing fetched) for a person to read.

    Args:
        evaluation (Evaluation): what `evaluate` returned.
        title (str): the page heading.
        losses (Optional[Sequence[float]]): training loss per epoch, for the chart.
        dev_f (Optional[Sequence[Optional[float]]]): dev F per epoch, for the chart.
        max_examples (Optional[int]): render at most this many mismatched examples and count
            the rest; None renders every one.
    RETURNS (str): the HTML.
    """
    sections = [f"<h1>{html.escape(title)}</h1>",
                f"<p>{evaluation.n_examples} examples, {len(evaluation.mismatches)} with mismatched entities.</p>",
                "<h2>Scores per label</h2>", _score_table(evaluation),
                "<h2>Confusion</h2>", _confusion_table(evaluation)]
    if losses:
        sections += ["<h2>Training</h2>", _chart(losses, list(dev_f or []))]
    legend = "".join(
        f'<span style="background:{color}">{html.escape(name.strip(" ·") or "correct")}</span>'
        for name, color in (_MARKS[k] for k in ("found", "missed", "spurious", "wrong_label", "boundary"))
    )
    sections += ["<h2>Mismatched examples</h2>", f'<p class="legend">{legend}</p>']
    shown = evaluation.mismatches if max_examples is None else evaluation.mismatches[:max_examples]
    for i, mismatch in enumerate(shown, 1):
        sections.append(
            f'<div class="example" id="example-{i}">'
            + _render(mismatch["text"], mismatch["gold"], f"#{i} gold")
            + _render(mismatch["text"], mismatch["predicted"], f"#{i} predicted")
            + "</div>"
        )
    if len(shown) < len(evaluation.mismatches):
        sections.append(f"<p>{len(evaluation.mismatches) - len(shown)} more mismatched examples not shown.</p>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(sections) + "</body></html>"
    )
