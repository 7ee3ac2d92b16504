"""A sweep's report, from its study alone: the trials table, parameter importance, the
best config as ``best.yaml``, and for a grid the ablation table and plot.

:func:`summarize` computes the numbers (a :class:`SweepReport`); :func:`sweep_report`
writes them into the sweep folder (or ``out``): ``report.md``, ``trials.csv``,
``best.yaml`` (loadable by ``mlplab train --config best.yaml``) and, for a grid,
``ablation.csv`` and ``ablation.png`` (matplotlib: the ``report`` extra).

Selection is on validation only: the best trial (or grid setting) is the one with the
highest validation score; test scores are shown beside it, never used to choose.
"""

from __future__ import annotations

import itertools
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Config
from ..errors import ConfigError
from ..files.atomic import check_outputs, os_errors, write_text_atomic
from ..tables import format_table, markdown_text
from .folders import Sweep, open_sweep
from .space import format_value
from .study import load_optuna
from .worker import format_score

if TYPE_CHECKING:
    import optuna
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["AblationRow", "SweepReport", "ablation_figure", "summarize", "sweep_report"]

REPORT, TRIALS_CSV, BEST, ABLATION_CSV, ABLATION_PNG = (
    "report.md",
    "trials.csv",
    "best.yaml",
    "ablation.csv",
    "ablation.png",
)
MIN_IMPORTANCE_TRIALS = 4  # fewer finished trials say nothing about which parameter matters


@dataclass(frozen=True)
class AblationRow:
    """One grid setting over its seeds: how many runs finished, and validation and test
    scores' mean, sample standard deviation (None for one run), min and max."""

    setting: dict[str, Any]
    runs: int
    planned: int
    val: tuple[float | None, float | None, float | None, float | None]  # mean, std, min, max
    test: tuple[float | None, float | None, float | None, float | None]
    val_values: tuple[float, ...] = ()
    test_values: tuple[float, ...] = ()


@dataclass
class SweepReport:
    """The numbers of a sweep's report (no files): see :func:`summarize`."""

    name: str
    path: Path
    kind: str  # search or grid
    regression: bool
    keys: list[str]  # the swept parameters, in the sweep's order
    trials: list[dict[str, Any]]  # one row per trial: number, state, value, test, params, ...
    requested: int
    counts: dict[str, int]
    best: dict[str, Any] | None  # the best trial's row (search) or setting (grid)
    best_config: Config | None
    importance: dict[str, float] | None = None
    importance_note: str = ""
    ablation: list[AblationRow] | None = None
    files: list[Path] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return "R²" if self.regression else "acc"

    def score(self, value: float | None) -> str:
        return format_score(value, self.regression)

    def trials_table(self, style: str = "text") -> str:
        """One row per trial: number, state, validation and test score, parameters,
        epochs run of planned, seconds, run directory (a path that works from here)."""
        scores = [f"val {self.metric}", f"test {self.metric}"]
        header = ["trial", "state", *scores, *self.keys, "epochs", "seconds", "run"]
        if style == "csv":
            header += ["host", "error"]
            rows = [self._csv_row(t) for t in self.trials]
        else:
            rows = [self._text_row(t) for t in self.trials]
        return format_table(header, rows, style)

    def importance_table(self, style: str = "text") -> str:
        if not self.importance:
            return ""
        rows = [[k, f"{v:.3f}"] for k, v in self.importance.items()]
        return format_table(["parameter", "importance"], rows, style)

    def ablation_table(self, style: str = "text") -> str:
        """One row per setting: runs finished of planned, validation and test mean ± std
        (and min-max); in CSV every number in its own column."""
        if not self.ablation:
            return ""
        keys = list(self.ablation[0].setting)
        if style == "csv":
            stats = [f"{s}_{m}" for s in ("val", "test") for m in ("mean", "std", "min", "max")]
            rows = [
                [str(r.setting[k]) for k in keys]
                + [str(r.runs), str(r.planned)]
                + [_raw(v) for v in (*r.val, *r.test)]
                for r in self.ablation
            ]
            return format_table([*keys, "runs", "planned", *stats], rows, "csv")
        header = [*keys, "runs"]
        header += [f"val {self.metric} mean ± std", "val min-max"]
        header += [f"test {self.metric} mean ± std", "test min-max"]
        rows = [
            [format_value(r.setting[k]) for k in keys]
            + [f"{r.runs}/{r.planned}", self._mean_std(r.val), self._range(r.val)]
            + [self._mean_std(r.test), self._range(r.test)]
            for r in self.ablation
        ]
        return format_table(header, rows, style)

    def text(self) -> str:
        """What ``mlplab sweep report`` prints."""
        lines = [
            f"sweep    {self.path}: {self.kind}, study {self.name}",
            f"trials   {self.counts_line()}",
            "",
        ]
        if self.kind == "grid":
            lines += [self.ablation_table().rstrip(), ""]
        lines += [self.trials_table().rstrip(), ""]
        if self.kind == "search":
            lines += ["importance " + (self.importance_note or "(optuna.importance, PED-ANOVA)")]
            if self.importance:
                lines += ["  " + line for line in self.importance_table().rstrip().splitlines()]
            lines.append("")
        lines.append(f"best     {self.best_line()}")
        return "\n".join(lines) + "\n"

    def markdown(self) -> str:
        """``report.md``: counts, the ablation (grid), the trials, importance, the best."""
        out = [
            f"# Sweep {markdown_text(self.name)}",
            "",
            f"{self.kind.capitalize()}; trials: {self.counts_line()}.",
            "Selection is on the validation split only; test scores are shown, never used to "
            "choose.",
            "",
        ]
        if self.kind == "grid":
            figure = f"![validation and test {self.metric} per setting]({ABLATION_PNG})"
            out += ["## Ablation", "", self.ablation_table("markdown"), figure, ""]
        out += ["## Trials", "", self.trials_table("markdown")]
        if self.kind == "search":
            out += ["## Parameter importance", ""]
            out += [self.importance_table("markdown")] if self.importance else []
            out += [
                self.importance_note or "optuna.importance (PED-ANOVA) over the complete trials.",
                "",
            ]
        out += [
            "## Best",
            "",
            markdown_text(self.best_line()),
            "",
            f"Train it again: `mlplab train --config {BEST}`.",
            "",
        ]
        return "\n".join(out)

    def best_line(self) -> str:
        """The best trial (search) or setting (grid) in one line, or that none finished."""
        if self.best is None:
            return "none yet: no trial has finished"
        if self.kind == "grid":
            setting = "  ".join(f"{k}={format_value(v)}" for k, v in self.best["setting"].items())
            return (
                f"{setting}: mean val {self.metric} {self.score(self.best['val'])} over "
                f"{self.best['runs']} runs (test {self.score(self.best['test'])})"
            )
        params = "  ".join(f"{k}={format_value(v)}" for k, v in self.best["params"].items())
        where = self._where(self.best["run_dir"])
        return (
            f"trial {self.best['number']}: val {self.metric} {self.score(self.best['value'])}  "
            f"{params}  (test {self.score(self.best['test'])}; {where})"
        )

    # ----- helpers --------------------------------------------------------------------
    def counts_line(self) -> str:
        """How many trials finished of how many asked, and how each ended, in one line."""
        order = ("complete", "pruned", "fail", "running", "waiting")
        parts = [
            f"{self.counts[s]} {s if s != 'fail' else 'failed'}"
            for s in order
            if self.counts.get(s)
        ]
        done = sum(self.counts.get(s, 0) for s in ("complete", "pruned"))
        return f"{done} of {self.requested} finished ({', '.join(parts) or 'none yet'})"

    def _text_row(self, t: dict[str, Any]) -> list[str]:
        epochs = f"{t['epochs_run']}/{t['epochs_planned']}" if t["epochs_run"] else "-"
        params = [format_value(t["params"][k]) if k in t["params"] else "-" for k in self.keys]
        seconds = f"{t['seconds']:.2f}" if t["seconds"] is not None else "-"
        scores = [self.score(t["value"]), self.score(t["test"])]
        return [
            str(t["number"]),
            t["state"],
            *scores,
            *params,
            epochs,
            seconds,
            self._where(t["run_dir"]),
        ]

    def _csv_row(self, t: dict[str, Any]) -> list[str]:
        """Raw numbers: fractions and seconds unrounded; the host and error too."""
        params = [str(t["params"].get(k, "")) for k in self.keys]
        return [
            str(t["number"]),
            t["state"],
            _raw(t["value"]),
            _raw(t["test"]),
            *params,
            str(t["epochs_run"] or ""),
            _raw(t["seconds"]),
            t["run_dir"] or "",
            t["host"] or "",
            t["error"] or "",
        ]

    def _where(self, run_dir: str | None) -> str:
        """A trial's run directory as a path that works from here: relative to the current
        folder when below it (``sweeps/S/runs/T``), absolute otherwise. Relative to the sweep
        it read ``runs/<stamp>-trial-0002``, which names a folder of the project's ``runs/``
        that does not exist."""
        if not run_dir:
            return "-"
        try:
            return str(Path(run_dir).relative_to(Path.cwd().resolve()))
        except (ValueError, OSError):  # elsewhere, or the current folder was removed
            return run_dir

    def _mean_std(self, stats: tuple[float | None, ...]) -> str:
        mean, std = stats[0], stats[1]
        if mean is None:
            return "-"
        if std is None:
            return self.score(mean)
        spread = f"{std:.4f}" if self.regression else f"{std * 100:.2f}"
        return f"{self.score(mean)} ± {spread}"

    def _range(self, stats: tuple[float | None, ...]) -> str:
        low, high = stats[2], stats[3]
        return "-" if low is None else f"{self.score(low)}-{self.score(high)}"


def summarize(sweep: Sweep) -> SweepReport:
    """The report's numbers, read from the study (no run directory is opened)."""
    spec, base = sweep.spec, sweep.base_config()
    frozen = sweep.study.get_trials(deepcopy=False)
    keys = list(spec["space"] if spec["kind"] == "search" else spec["grid"])
    if spec["kind"] == "grid" and spec.get("seeds"):
        keys.append("train.seed")
    rows = [_row(t) for t in frozen]
    regression = any(r["metric"] == "val_r2" for r in rows)
    report = SweepReport(
        name=sweep.name,
        path=sweep.path,
        kind=spec["kind"],
        regression=regression,
        keys=keys,
        trials=rows,
        requested=int(spec["trials"]),
        counts=sweep.counts(),
        best=None,
        best_config=None,
    )
    complete = [r for r in rows if r["state"] == "complete"]
    if spec["kind"] == "search":
        if complete:
            best = max(complete, key=lambda r: (r["value"], -r["number"]))
            report.best = best
            report.best_config = base.override(best["params"], source=f"trial {best['number']}")
        report.importance, report.importance_note = _importance(sweep.study, len(complete))
    else:
        report.ablation = _ablation(spec, rows)
        finished = [a for a in report.ablation if a.val[0] is not None]
        if finished:
            top = max(finished, key=lambda a: a.val[0])  # type: ignore[arg-type, return-value]
            report.best = {
                "setting": top.setting,
                "val": top.val[0],
                "test": top.test[0],
                "runs": top.runs,
            }
            report.best_config = base.override(top.setting, source="grid setting")
    return report


def sweep_report(
    sweep: Sweep | str | Path | None = None,
    out: str | Path | None = None,
    *,
    storage: str | None = None,
    study: str | None = None,
    flags: Sequence[str] = (),
) -> SweepReport:
    """Write a sweep's report into ``out`` (default: its folder; for a study named by
    ``storage`` and ``study`` alone, ``sweeps/<study>``) and return its numbers:
    ``report.md``, ``trials.csv``, ``best.yaml`` once a trial finished, and for a grid
    ``ablation.csv`` and ``ablation.png``.

    In ``out``, only an earlier sweep report (``report.md`` beginning ``# Sweep``) and the
    files written with it are replaced: any other file with those names, or anything but a
    regular file, is refused before writing (WriteError).

    ``flags``: the other command-line options given (by name); a report reads an existing
    sweep, so any but --out (a recipe's, a new sweep's, --trials, --resume) is refused.
    """
    _check_report_flags(sweep, storage, flags)
    if not isinstance(sweep, Sweep):
        sweep = open_sweep(sweep, storage=storage, study=study, join=False)
    report = summarize(sweep)
    folder = Path(out) if out is not None else sweep.path
    names = (TRIALS_CSV, BEST, ABLATION_CSV, ABLATION_PNG)
    ours = "an earlier sweep report (# Sweep ...)"
    outputs = [folder / n for n in names]
    check_outputs(folder / REPORT, outputs, ours=_is_report, ours_is=ours)
    with os_errors(folder, "choose another --out"):  # a full disk, a read-only folder: one line
        folder.mkdir(parents=True, exist_ok=True)
    files = {REPORT: report.markdown(), TRIALS_CSV: report.trials_table("csv")}
    if report.best_config is not None:
        files[BEST] = report.best_config.to_yaml()
    if report.ablation:
        files[ABLATION_CSV] = report.ablation_table("csv")
    with os_errors(folder / REPORT, "choose another --out"):
        for name, text in files.items():
            write_text_atomic(folder / name, text)
            report.files.append(folder / name)
        if report.ablation and any(a.runs for a in report.ablation):
            from ..analysis.figures import save_png

            save_png(ablation_figure(report), folder / ABLATION_PNG)
            report.files.append(folder / ABLATION_PNG)
    return report


def _check_report_flags(
    sweep: Sweep | str | Path | None, storage: str | None, flags: Sequence[str]
) -> None:
    extra = [flag for flag in flags if flag != "--out"]
    if extra:
        raise ConfigError(
            f"sweep report reads an existing sweep; {', '.join(extra)} would make a new one "
            "(report takes SWEEP_DIR or --storage URL --study NAME, and --out DIR)"
        )
    if sweep is None and storage is None:
        raise ConfigError("sweep report needs SWEEP_DIR, or --storage URL (and --study NAME)")


def _is_report(path: Path) -> bool:
    """``path`` is a report.md this module wrote (it begins with ``# Sweep``)."""
    try:
        with open(path, "rb") as f:
            return f.read(8) == b"# Sweep "
    except OSError:
        return False


def ablation_figure(report: SweepReport) -> Figure:
    """Validation and test score against the first grid key (one line per combination of
    the others): mean ± std over seeds, each run a dot. Numeric keys whose positive values
    span two decades or more get a log axis (symlog when 0 is among them)."""
    from ..analysis.figures import TEST, VAL, new_figure

    rows = report.ablation or []
    first = next(iter(rows[0].setting))
    xs = list(dict.fromkeys(r.setting[first] for r in rows))
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs)
    groups = _groups(rows, first)
    figure = new_figure(10, 4)
    axes = figure.subplots(1, 2, sharey=True)
    for ax, split, color in ((axes[0], "val", VAL), (axes[1], "test", TEST)):
        for g, (label, members) in enumerate(groups):
            shade = color if len(groups) == 1 else f"C{g}"
            # categories side by side, a little apart, so that their error bars do not overlap
            dodge = 0.0 if numeric or len(groups) == 1 else (g - (len(groups) - 1) / 2) * 0.08
            x = [
                (r.setting[first] if numeric else xs.index(r.setting[first])) + dodge
                for r in members
            ]
            _plot_runs(ax, members, x, split, shade, label or None, numeric, report.regression)
        ax.set_title("validation" if split == "val" else "test")
        ax.set_xlabel(first)
        _set_x_axis(ax, xs, numeric)
        ax.grid(alpha=0.3)
        if len(groups) > 1:
            ax.legend(fontsize=8)
    axes[0].set_ylabel(f"{'R²' if report.regression else 'accuracy (%)'}, mean ± std over seeds")
    return figure


def _groups(rows: list[AblationRow], first: str) -> list[tuple[str, list[AblationRow]]]:
    """The grid's settings by the values of the keys other than ``first`` (one line each),
    labelled ``key=value, ...`` ("" when the grid has one key)."""
    groups: dict[tuple[Any, ...], list[AblationRow]] = {}
    for r in rows:
        groups.setdefault(tuple((k, v) for k, v in r.setting.items() if k != first), []).append(r)
    return [
        (", ".join(f"{k}={format_value(v)}" for k, v in others), members)
        for others, members in groups.items()
    ]


def _plot_runs(
    ax: Axes,
    rows: list[AblationRow],
    x: list[float],
    split: str,
    color: str,
    label: str | None,
    numeric: bool,
    regression: bool,
) -> None:
    """One group's mean ± std of ``split`` ("val" or "test") at ``x``, and each run a dot."""
    percent = 1 if regression else 100
    done = [(px, r) for px, r in zip(x, rows, strict=True) if getattr(r, split)[0] is not None]
    means = [getattr(r, split)[0] * percent for _, r in done]
    stds = [(getattr(r, split)[1] or 0.0) * percent for _, r in done]
    line = "-" if numeric else "none"  # categories are not on a line
    px = [p for p, _ in done]
    ax.errorbar(
        px, means, yerr=stds, color=color, marker="o", capsize=4, label=label, linestyle=line
    )
    for p, r in done:
        values = [v * percent for v in getattr(r, f"{split}_values")]
        ax.plot([p] * len(values), values, "o", color=color, alpha=0.35, markersize=4)


def _set_x_axis(ax: Axes, xs: list[Any], numeric: bool) -> None:
    """A log axis for positive numbers spanning two decades or more (symlog with a 0 among
    them), category names as ticks."""
    positive = [x for x in xs if numeric and x > 0]
    if positive and max(positive) / min(positive) >= 100 and min(xs) >= 0:
        if 0 in xs:
            ax.set_xscale("symlog", linthresh=min(positive))
        else:
            ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(xs)), [str(x) for x in xs])


# ----- helpers ---------------------------------------------------------------------------------
def _row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    a = t.user_attrs
    value = t.value if t.state.name == "COMPLETE" else None
    if t.state.name == "PRUNED" and t.intermediate_values:
        value = t.intermediate_values[max(t.intermediate_values)]
    attrs = ("test", "epochs_run", "epochs_planned", "seconds", "run_dir", "host", "error")
    return {
        "number": t.number,
        "state": t.state.name.lower(),
        "value": value,
        "params": dict(t.params),
        "metric": a.get("metric", "val_accuracy"),
        **{name: a.get(name) for name in attrs},
    }


def _importance(study: optuna.Study, complete: int) -> tuple[dict[str, float] | None, str]:
    optuna = load_optuna()
    if complete < MIN_IMPORTANCE_TRIALS:
        return None, (
            f"needs at least {MIN_IMPORTANCE_TRIALS} complete trials; this sweep has {complete}"
        )
    # PED-ANOVA (Optuna >= 3.6; the default from 4.x): fast, no random forest to fit
    ped_anova = getattr(optuna.importance, "PedAnovaImportanceEvaluator", None)
    evaluator, name = (ped_anova(), "PED-ANOVA") if ped_anova else (None, "fANOVA")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            importance = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError) as exc:
            return None, f"could not be estimated: {exc}"
    notes = [
        str(w.message)
        for w in caught
        if "importance" in str(w.message).lower()
        and not issubclass(w.category, optuna.exceptions.ExperimentalWarning)
    ]
    note = f"(optuna.importance, {name}, {complete} complete trials)"
    if notes:
        note += f"; optuna says: {notes[0]}"
    return {k: float(v) for k, v in importance.items()}, note


def _ablation(spec: dict[str, Any], rows: list[dict[str, Any]]) -> list[AblationRow]:
    grid = spec["grid"]
    keys = list(grid)
    seeds = len(spec.get("seeds") or []) or 1
    out = []
    for combo in itertools.product(*grid.values()):
        setting = dict(zip(keys, combo, strict=True))
        members = [r for r in rows if all(r["params"].get(k) == v for k, v in setting.items())]
        done = [r for r in members if r["state"] == "complete"]
        vals = tuple(r["value"] for r in done if r["value"] is not None)
        tests = tuple(r["test"] for r in done if r["test"] is not None)
        out.append(AblationRow(setting, len(done), seeds, _stats(vals), _stats(tests), vals, tests))
    return out


def _stats(
    values: tuple[float, ...],
) -> tuple[float | None, float | None, float | None, float | None]:
    if not values:
        return None, None, None, None
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std, min(values), max(values)


def _raw(value: Any) -> str:
    return "" if value is None else repr(value) if isinstance(value, float) else str(value)
