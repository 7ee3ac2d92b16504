"""The HTML a notebook shows for a run, a training result, an analysis and a comparison.

Built from plain facts (a run's ``summary.json``, ``metrics.jsonl`` and ``model.json``, as
dicts), so the classes that own them (:class:`mlplab.Run` and the rest, in higher layers)
only gather the facts and call these. Nothing here loads a model or data. Every string
that comes from a run is HTML-escaped: a run's name and its class names are user input.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

from .svg import Curves, curves_html

__all__ = ["NOTES", "card", "comparison_card", "model_words", "run_facts", "summary_notes"]

BOX = (
    "border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:4px 0;"
    "font:13px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;"
    "background:#fff;max-width:760px"
)
CELL = "padding:1px 10px 1px 0;text-align:left;vertical-align:top"
NOTE = "color:#59636e;font-size:12px;margin:4px 0"
NOTES = {  # summary.json key: the note a card (and the report's header) shows when it is true
    "interrupted": "Training was interrupted: the kept weights are the best before the stop.",
    "dry_run": "This was a dry run (a few batches per epoch): the numbers mean nothing.",
}


def run_facts(
    summary: Mapping[str, Any], model: Mapping[str, Any] | None, history: Sequence[Any]
) -> list[tuple[str, str]]:
    """(label, value) rows of a run's card: dataset, model, test figures, calibration and
    rejection when present, epochs, training time, device. Values are plain text."""
    rows = [("dataset", str(summary.get("dataset", "?")))]
    if model:
        rows.append(("model", model_words(model, summary.get("parameters"))))
    if summary.get("task") == "regression":
        rows += [
            ("test R²", _figure(summary.get("test_r2"), ".4f")),
            ("test RMSE", _figure(summary.get("test_rmse"), ".4g")),
        ]
    elif summary:
        rows.append(("test accuracy", _figure(summary.get("test_accuracy"), ".2%")))
    if summary:
        rows.append(("test loss", _figure(summary.get("test_loss"), ".4f")))
    if _finite(summary.get("test_ece")):
        before = summary.get("test_ece_uncalibrated")
        was = f" (uncalibrated {_figure(before, '.2%')})" if _finite(before) else ""
        rows.append(("calibration", f"ECE {_figure(summary['test_ece'], '.2%')}{was}"))
    if _finite(summary.get("test_rejected_fraction")):
        rows.append(
            (
                "rejection",
                f"{_figure(summary['test_rejected_fraction'], '.2%')} of the test split rejected, "
                f"accuracy {_figure(summary.get('test_accepted_accuracy'), '.2%')} on the accepted",
            )
        )
    if summary:
        kept = summary.get("best_epoch")
        rows.append(
            (
                "epochs",
                f"{summary.get('epochs_run', len(history))} of {summary.get('epochs_planned', '?')}"
                + (f", kept epoch {kept}" if kept is not None else ""),
            )
        )
        rows.append(("train seconds", _figure(summary.get("train_seconds"), ".1f")))
        if summary.get("device"):
            rows.append(("device", f"{summary['device']} ({summary.get('device_name', '?')})"))
    else:
        rows.append(("epochs", f"{len(history)} finished; no summary.json yet (not finished)"))
    return rows


def summary_notes(summary: Mapping[str, Any]) -> list[str]:
    """The :data:`NOTES` that ``summary.json`` calls for (an interrupted run, a dry run)."""
    return [text for key, text in NOTES.items() if summary.get(key)]


def card(
    title: str,
    path: str,
    rows: Sequence[tuple[str, str]],
    curves: Curves | None,
    *,
    notes: Sequence[str] = (),
    extra: str = "",
) -> str:
    """One card: a title, a table of (label, value), the curves, notes, then ``extra`` (HTML
    the caller built from escaped parts, e.g. a confusion matrix)."""
    cells = "".join(
        f'<tr><td style="{CELL};color:#59636e">{html.escape(k)}</td>'
        f'<td style="{CELL}">{html.escape(v)}</td></tr>'
        for k, v in [*rows, ("path", path)]
    )
    parts = [
        f'<div style="{BOX}">',
        f'<div style="font-weight:600;font-size:15px">{html.escape(title)}</div>',
        f'<table style="border-collapse:collapse;margin:4px 0">{cells}</table>',
    ]
    if curves is not None and curves.epochs:
        parts.append(curves_html([curves]))
    parts += [f'<div style="{NOTE}">{html.escape(n)}</div>' for n in notes]
    parts += [extra, "</div>"]
    return "".join(parts)


def comparison_card(
    header: Sequence[str], rows: Sequence[Sequence[str]], runs: Sequence[Curves], note: str = ""
) -> str:
    """Runs side by side: the results table, then everyone's curves overlaid."""
    head = "".join(f'<th style="{CELL}">{html.escape(h)}</th>' for h in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{CELL}">{html.escape(c)}</td>' for c in row) + "</tr>"
        for row in rows
    )
    return (
        f'<div style="{BOX};max-width:none">'
        f'<div style="font-weight:600;font-size:15px">Comparing {len(rows)} runs</div>'
        f'<table style="border-collapse:collapse;margin:4px 0"><tr>{head}</tr>{body}</table>'
        + (f'<div style="{NOTE}">{html.escape(note)}</div>' if note else "")
        + (curves_html(runs) if any(r.epochs for r in runs) else "")
        + "</div>"
    )


def model_words(spec: Mapping[str, Any], parameters: Any = None) -> str:
    """ "784-250-100-10 relu, 222,360 parameters" from ``model.json``'s ``model``."""
    try:
        c, h, w = (int(v) for v in spec["input_shape"])
        crop = int(spec.get("crop", 0))
        inputs = c * (h - 2 * crop) * (w - 2 * crop)
        widths = "-".join(str(v) for v in [inputs, *spec.get("hidden", []), spec["classes"]])
    except (KeyError, TypeError, ValueError):
        return "?"
    kind = spec.get("activation", "?") if spec.get("hidden") else "linear"
    count = f", {parameters:,} parameters" if isinstance(parameters, int) else ""
    return f"{widths} {kind}{count}"


def _figure(value: Any, form: str) -> str:
    return format(value, form) if _finite(value) else "-"


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
