"""A run's model card: ``README.md`` in the run directory, for a colleague or a model hub.

Written from the run's own files only (``config.yaml``, ``dataset.json``, ``summary.json``,
``model.json``, ``metrics.jsonl``, and ``analysis.json`` when ``mlplab report`` left one):
what the model is, its data and splits, the recipe, the test figures with a per-class table,
the calibration and the rejection of unfamiliar inputs when the run has them, what it is for
and what it is not, and how to load, predict, serve and cite it. It opens with YAML front
matter in the Hugging Face model-card style (``library_name``, ``license``, ``tags``,
``datasets``, ``metrics``, and ``model-index`` holding the test figures with their values).

Training writes it when it ends (:func:`refresh_card`); ``mlplab card RUN`` rewrites it
(:func:`write_card`). A card carries :data:`MARKER` on the line after its front matter: a
``README.md`` without it is the user's, and is never replaced unless they name it
(``--out RUN/README.md --force``). Every write goes through a temporary file and a rename.

The card lives in :mod:`mlplab.run` (not ``report/`` or ``integrations/``) because the
training loop, below those layers, writes it.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from .. import __version__
from ..config import Config
from ..errors import ConfigError, MlplabError, WriteError
from ..files.atomic import CARD, EXPORT_RECORD, check_target, write_text_atomic
from ..files.limits import printable
from ..model.heads import CLASSIFICATION_LOSSES
from ..tables import markdown_code, markdown_text
from .directory import Run, _read_json

__all__ = ["CARD", "MARKER", "card_text", "is_card", "refresh_card", "write_card"]


ANALYSIS = "analysis.json"  # mlplab report's numbers (report/run_report.py writes it there)
MARKER = "<!-- mlplab model card"  # how a card mlplab wrote begins its first body line
_MARKER_LINE = (
    MARKER + ": written by mlplab {version} from this run's own files; `mlplab card RUN` "
    "rewrites it. Delete this line to keep your edits: mlplab then leaves the file alone. -->"
)
_SNIFF = 64 * 1024  # bytes of a README.md read to find the marker (it sits near the top)
_PLUMBING = {  # config keys that say where and how fast, not what was trained: not the recipe
    "run.dir",
    "run.name",
    "data.data_dir",
    "data.download",
    "data.verify",
    "data.mirror",
    "train.device",
    "train.threads",
    "train.eval_batch_size",
    "train.dist_timeout",
    "track.to",
    "track.uri",
    "track.experiment",
}
_SMALL_TEST = 1000  # test samples under which the card says its figures are rough


# ----- writing ----------------------------------------------------------------------------------
def is_card(path: str | os.PathLike[str]) -> bool:
    """``path`` is a model card mlplab wrote (its marker line is there, near the top)."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError:
        return False
    return MARKER.encode() in head


def write_card(
    run_dir: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    license: str = "unknown",
) -> Path:
    """Write the card of ``run_dir`` to ``out`` (default ``RUN/README.md``) and return the path.

    The default replaces only a card mlplab wrote; a ``README.md`` of the user's is refused
    (one :class:`WriteError` line saying how to write elsewhere). A named ``out`` may replace
    an earlier card, or any regular file with ``force``; never a run's own files.
    """
    _check_license(license)
    run = Run.open(run_dir)
    target = Path(out) if out is not None else run.path / CARD
    if out is None and os.path.lexists(target) and not is_card(target):
        raise WriteError(
            f"refusing to replace {target}: it was not written by mlplab (no '{MARKER}' line), "
            f"so it is yours; write the card elsewhere with --out FILE, or replace it with "
            f"--out {target} --force",
            17,  # EEXIST
            str(target),
            "File exists",
        )
    if target.name == EXPORT_RECORD and target.parent.resolve() == run.path.resolve():
        raise WriteError(  # the run's export record: exports refuse to run without it
            f"refusing to write {target}: {EXPORT_RECORD} is where export records its parity "
            "checks, not a place for a card; choose another --out",
            17,  # EEXIST
            str(target),
            "File exists",
        )
    check_target(target, force=force, replaceable=is_card, ours_is="an mlplab model card")
    write_text_atomic(target, card_text(run, license=license))
    return target


def refresh_card(run: Run) -> str | None:
    """Write ``RUN/README.md`` when training ends, unless a README.md that is not a card is
    there; return a one-line note when the card was not written (for the log), else None."""
    target = run.path / CARD
    if os.path.lexists(target) and not is_card(target):
        return (
            f"model card not written: {target} is not one mlplab wrote, so it is left alone; "
            f"write the card elsewhere with `mlplab card {run.path} --out FILE`"
        )
    try:
        write_text_atomic(target, card_text(run))
    except (MlplabError, OSError) as exc:  # the run is whole without it: say so, go on
        return f"model card not written ({printable(exc)}); write it with `mlplab card {run.path}`"
    return None


# ----- the card ---------------------------------------------------------------------------------
def card_text(run: Run | str | os.PathLike[str], *, license: str = "unknown") -> str:
    """The card of a run, as Markdown with YAML front matter."""
    _check_license(license)
    run = run if isinstance(run, Run) else Run.open(run)
    facts = _Facts(run)
    parts = [
        "---\n"
        + yaml.safe_dump(facts.front_matter(license), sort_keys=False, allow_unicode=True)
        + "---",
        _MARKER_LINE.format(version=__version__),
        facts.heading(),
        facts.model_section(),
        facts.data_section(),
        facts.recipe_section(),
        facts.results_section(),
        facts.calibration_section(),
        facts.rejection_section(),
        facts.use_section(),
        facts.how_section(),
        facts.cite_section(license),
    ]
    return "\n\n".join(p for p in parts if p).rstrip() + "\n"


class _Facts:
    """What a card says, read once from the run's files."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.path = str(run.path)
        self.name = run.path.name
        self.config = run.config()
        self.summary = run.summary()
        self.model = run.model_info()
        self.history = run.metrics()
        try:
            self.dataset = run.dataset_info()
        except MlplabError:  # an older run without dataset.json: the summary names the data
            self.dataset = {}
        self.analysis = self._analysis()
        self.spec = self.model["model"]
        self.task = self.model.get("task", "classification")
        self.regression = self.task == "regression"
        self.classes: list[str] = list(self.model.get("classes", []))
        shape = self.spec["input_shape"]
        # feature rows, not images: a regression (mlplab's are on tables), or a shape with at
        # most one side longer than 1 (CSV rows are read as 1x1xF or Fx1x1)
        self.tabular = self.regression or sorted(shape)[1] == 1
        self.data_name = str(self.summary.get("dataset") or self.dataset.get("name") or "unknown")

    def _analysis(self) -> dict[str, Any]:
        """``analysis.json`` when the report wrote one for these very classes, else {}."""
        file = self.run.path / ANALYSIS
        if not file.is_file():
            return {}
        try:
            analysis = _read_json(file, dict, "a report's analysis")
        except MlplabError:
            return {}
        return analysis if analysis.get("classes") == self.model.get("classes") else {}

    # ----- front matter ---------------------------------------------------------------
    def pipeline(self) -> str:
        if self.regression:
            return "tabular-regression" if self.tabular else "image-regression"
        return "tabular-classification" if self.tabular else "image-classification"

    def metrics(self) -> list[tuple[str, str, float]]:
        """(metric id, name, value) of the test figures the summary holds."""
        s = self.summary
        rows = (
            [
                ("r_squared", "test R²", "test_r2"),
                ("rmse", "test RMSE", "test_rmse"),
                ("mae", "test MAE", "test_mae"),
                ("loss", "test loss", "test_loss"),
            ]
            if self.regression
            else [
                ("accuracy", "test accuracy", "test_accuracy"),
                ("loss", "test loss", "test_loss"),
                ("ece", "test ECE (calibrated)", "test_ece"),
                ("ece", "test ECE (uncalibrated)", "test_ece_uncalibrated"),
                ("nll", "test NLL (calibrated)", "test_nll"),
                ("brier", "test Brier score (calibrated)", "test_brier"),
                ("rejected_fraction", "test rejected fraction", "test_rejected_fraction"),
                ("accuracy", "test accuracy on the accepted", "test_accepted_accuracy"),
            ]
        )
        return [(t, n, s[k]) for t, n, k in rows if isinstance(s.get(k), int | float)]

    def front_matter(self, license: str) -> dict[str, Any]:
        metrics = self.metrics()
        return {
            "library_name": "mlplab",
            "license": license,
            "tags": ["mlplab", "mlp", "pytorch", "safetensors", self.pipeline()],
            "datasets": [self.data_name],
            "pipeline_tag": self.pipeline(),
            "metrics": list(dict.fromkeys(t for t, _, _ in metrics)),
            "model-index": [
                {
                    "name": self.name,
                    "results": [
                        {
                            "task": {"type": self.pipeline(), "name": self._task_words()},
                            "dataset": {
                                "name": self.data_name,
                                "type": self.data_name,
                                "split": "test",
                            },
                            "metrics": [{"type": t, "value": v, "name": n} for t, n, v in metrics],
                        }
                    ],
                }
            ],
        }

    def _task_words(self) -> str:
        kind = "regression" if self.regression else "classification"
        return f"{'Tabular' if self.tabular else 'Image'} {kind}"

    # ----- sections -----------------------------------------------------------------
    def heading(self) -> str:
        s = self.summary
        what = self._architecture_words()
        if self.regression:
            result = _figure(s.get("test_r2"), "R² {:.4f}")
            goal = f"predicts one number from {self._inputs_words()}"
        else:
            result = _figure(s.get("test_accuracy"), "accuracy {:.2%}")
            goal = f"tells {len(self.classes)} classes apart: {_names(self.classes)}"
        tested = s.get("samples", {}).get("test")
        on = f" on {tested:,} test samples" if isinstance(tested, int) else ""
        status = (
            "training has not finished: this run has no summary.json yet, so no test figures"
            if not s
            else f"Test {result}{on}."
        )
        warnings = []
        if s.get("dry_run"):
            warnings.append(
                "**A dry run** (train.dry_run: a few batches of each epoch, a smoke test): its "
                "figures say nothing about the model."
            )
        if s.get("interrupted"):
            warnings.append(
                f"**Interrupted** after {s.get('epochs_run')} of {s.get('epochs_planned')} "
                "epochs (Ctrl-C): the weights are the best of the epochs that ran."
            )
        return "\n\n".join(
            [
                f"# {_cell(self.name)}",
                f"{what}, trained by mlplab on **{_cell(self.data_name)}**, that {goal}. {status}",
                *warnings,
            ]
        )

    def _architecture_words(self) -> str:
        hidden = self.spec.get("hidden", [])
        if not hidden:
            kind = "A linear regression" if self.regression else "A logistic regression"
            return f"{kind} (one linear layer, {_count(self.summary.get('parameters'))} parameters)"
        widths = " → ".join(str(h) for h in hidden)
        return (
            f"A multilayer perceptron ({widths} hidden units, {self.spec.get('activation')}; "
            f"{_count(self.summary.get('parameters'))} parameters)"
        )

    def _inputs_words(self) -> str:
        c, h, w = self.spec["input_shape"]
        if self.tabular:
            n = c * h * w
            return f"{n} feature{'s' if n != 1 else ''}"
        return f"{c}×{h}×{w} images"

    def model_section(self) -> str:
        spec, s = self.spec, self.summary
        outputs = "1 output (the prediction)" if self.regression else f"{spec['classes']} classes"
        rows = [
            ("input", self._inputs_words() + ("" if self.tabular else " (C×H×W)")),
            ("hidden layers", ", ".join(map(str, spec.get("hidden", []))) or "none (linear)"),
            ("activation", spec.get("activation")),
            ("dropout", spec.get("dropout")),
            ("output", f"{outputs}, head `{spec.get('head')}`"),
            ("parameters", _count(s.get("parameters"))),
        ]
        steps = [k for k in ("deskew", "center") if spec.get(k)]
        if spec.get("crop"):
            steps.append(f"crop {spec['crop']} px")
        if spec.get("tta"):
            steps.append(f"test-time views {', '.join(spec['tta'])}")
        if steps:
            rows.append(("inside the model", ", ".join(steps)))
        if not self.regression:
            t = self.model.get("temperature")
            rows.append(("temperature", f"{t:.4g}" if t is not None else "none (1)"))
        rows.append(("weights", "`model.safetensors` (no pickle) + `model.json`"))
        return "## Model\n\n" + _table(("", ""), rows)

    def data_section(self) -> str:
        d, s, cfg = self.dataset, self.summary, self.config.data
        samples = s.get("samples") or d.get("samples") or {}
        origin = s.get("data_origin") or d.get("origin")
        lines = [f"**{_cell(self.data_name)}**" + (f" ({_cell(origin)})" if origin else "")]
        if not self.regression:
            lines[0] += f", {len(self.classes)} classes: {_names(self.classes, 20)}"
        else:
            target = cfg.target
            lines[0] += f"; the target column {_code(target)}" if target else ""
        val = cfg.val_size
        held = f"{val:.0%} of the training data" if val < 1 else f"{int(val):,} training samples"
        rows = [
            ("train", samples.get("train"), "the rest of the training data"),
            (
                "validation",
                samples.get("val"),
                f"{held}, class-stratified, seed {cfg.split_seed} (`data.split_seed`); chooses "
                f"the kept epoch{', the temperature and the rejection threshold' if not self.regression else ''}"
                if samples.get("val")
                else "none (`data.val_size` 0): the last epoch is kept",
            ),
            (
                "test",
                samples.get("test"),
                _code(cfg.test_dataset, table=True)
                if cfg.test_dataset
                else f"the dataset's own test split (a file without one: {cfg.test_size:.0%} held "
                f"out, seed {cfg.split_seed}); scored once, on the kept weights",
            ),
        ]
        table = _table(
            ("split", "samples", "what it is"),
            [(n, _count(k), why) for n, k, why in rows],
        )
        norm = {
            "standard": "(x − mean) / std per channel, from the training split",
            "symmetric": "pixels to [−1, 1]",
            "none": "pixels to [0, 1]",
        }.get(cfg.normalize, cfg.normalize)
        extra = [f"Inputs are normalized inside the model's pipeline: {norm}."]
        if cfg.limit:
            extra.append(
                f"Trained on a class-stratified {cfg.limit:,} of the training samples (`data.limit`)."
            )
        reload = d.get("reload")
        extra.append(
            f"The run reloads its data by itself (`dataset.json`: {_code(reload.get('dataset'))})."
            if isinstance(reload, dict) and reload.get("dataset")
            else "The data was passed in memory: evaluate and report need it passed again."
        )
        return "## Data and splits\n\n" + "\n\n".join([lines[0] + ".", table, " ".join(extra)])

    def recipe_section(self) -> str:
        cfg, s = self.config, self.summary
        t = cfg.train
        loss = (
            f"{t.loss} (regression)"
            if self.regression
            else CLASSIFICATION_LOSSES.get(cfg.model.head, cfg.model.head)
        )
        core = (
            f"{t.optimizer} at lr {t.lr:g}, batch {t.batch_size}, {t.epochs} epochs planned, "
            f"schedule {t.scheduler}, weight decay {t.weight_decay:g}, loss {loss}, "
            f"seed {t.seed}; the kept epoch is chosen by `train.select` = {t.select}."
        )
        changed = _changed(cfg)
        table = (
            "Settings changed from mlplab's defaults (the whole recipe is `config.yaml`; "
            "`mlplab train --config config.yaml` trains it again):\n\n"
            + _table(("key", "value", "default"), changed)
            if changed
            else "Every setting is mlplab's default (`config.yaml` holds them all)."
        )
        ran = ""
        if s:
            ran = (
                f"Ran {s.get('epochs_run')} of {s.get('epochs_planned')} epochs in "
                f"{_seconds(s.get('train_seconds'))} of training "
                f"({_seconds(s.get('seconds_per_epoch'))} per epoch) on {_cell(s.get('device'))}"
                f" ({_cell(s.get('device_name'))}, {s.get('threads')} thread"
                f"{'s' if s.get('threads') != 1 else ''}"
                + (f", {s['world_size']} processes" if (s.get("world_size") or 1) > 1 else "")
                + f"); kept epoch {s.get('best_epoch')}."
            )
            versions = s.get("versions") or {}
            if versions:
                ran += (
                    " Versions: "
                    + ", ".join(f"{_cell(k)} {_cell(v)}" for k, v in versions.items())
                    + "."
                )
        curve = self._curve()
        return "## Recipe\n\n" + "\n\n".join(p for p in (core, table, ran, curve) if p)

    def _curve(self) -> str:
        """The epochs' records (metrics.jsonl) as a table; at most 12 rows (first, last, spread)."""
        h = self.history
        if not h:
            return ""
        keep = (
            h
            if len(h) <= 12
            else [h[round(i * (len(h) - 1) / 11)] for i in range(12)]  # even spread, both ends
        )
        if self.regression:
            head = ("epoch", "train loss", "val loss", "val R²")
            rows = [
                (
                    r["epoch"],
                    _num(r.get("train_loss")),
                    _num(r.get("val_loss")),
                    _num(r.get("val_r2")),
                )
                for r in keep
            ]
        else:
            head = ("epoch", "train loss", "train accuracy", "val loss", "val accuracy")
            rows = [
                (
                    r["epoch"],
                    _num(r.get("train_loss")),
                    _pct(r.get("train_accuracy")),
                    _num(r.get("val_loss")),
                    _pct(r.get("val_accuracy")),
                )
                for r in keep
            ]
        note = "" if keep is h else f" ({len(keep)} of {len(h)} epochs, evenly spread)"
        return f"Training curve (`metrics.jsonl`{note}):\n\n" + _table(head, rows)

    def results_section(self) -> str:
        s = self.summary
        if not s:
            return ""
        n = (s.get("samples") or {}).get("test")
        rows: list[tuple[Any, ...]]
        if self.regression:
            rows = [
                ("R²", _num(s.get("test_r2"))),
                ("RMSE", _num(s.get("test_rmse"))),
                ("MAE", _num(s.get("test_mae"))),
                (f"loss ({self.config.train.loss})", _num(s.get("test_loss"))),
            ]
            text = "## Results on the test split\n\n" + _table(("figure", "value"), rows)
            line = s.get("line")
            if isinstance(line, dict) and "slope" in line:
                text += (
                    f"\n\nThe fitted line, in the data's own units: "
                    f"{_line(line.get('slope'), line.get('intercept'))} (scikit-learn's least "
                    f"squares on the training split: "
                    f"{_line(line.get('sklearn_slope'), line.get('sklearn_intercept'))})."
                )
            return text
        acc = s.get("test_accuracy")
        interval = _wilson(acc, n)
        rows = [
            (
                "accuracy",
                _pct(acc) + (f" (95% interval {interval}, Wilson, n = {n:,})" if interval else ""),
            ),
            (
                f"loss ({CLASSIFICATION_LOSSES.get(self.spec.get('head'), '')})",
                _num(s.get("test_loss")),
            ),
        ]
        if isinstance(self.analysis.get("macro_f1"), int | float):
            rows.append(("macro F1 (`analysis.json`)", _num(self.analysis["macro_f1"])))
        if s.get("best_val_accuracy") is not None:
            rows.append(("best validation accuracy", _pct(s.get("best_val_accuracy"))))
        parts = ["## Results on the test split", _table(("figure", "value"), rows)]
        if isinstance(n, int) and n < _SMALL_TEST:
            parts.append(
                f"Only {n:,} test samples: one more mistake moves the accuracy by "
                f"{1 / n:.2%}; read the figures as rough."
            )
        parts.append(self._per_class())
        return "\n\n".join(parts)

    def _per_class(self) -> str:
        per = self.summary.get("test_per_class_accuracy") or {}
        detail = {
            row.get("class"): row
            for row in self.analysis.get("per_class", [])
            if isinstance(row, dict)
        }
        if detail:
            head: tuple[str, ...] = (
                "class",
                "accuracy (recall)",
                "precision",
                "F1",
                "test samples",
            )
            rows = [
                (
                    _cell(c),
                    _pct(per.get(c)),
                    _num(detail.get(c, {}).get("precision")),
                    _num(detail.get(c, {}).get("f1")),
                    _count(detail.get(c, {}).get("support")),
                )
                for c in self.classes
            ]
            source = (
                "accuracy from `summary.json`; precision, F1 and test samples from "
                "`analysis.json`, which `mlplab report` wrote"
            )
        else:
            head = ("class", "accuracy")
            rows = [(_cell(c), _pct(per.get(c))) for c in self.classes]
            source = "`summary.json`; `mlplab report` adds precision, recall and F1"
        return f"Per class ({source}):\n\n" + _table(head, rows)

    def calibration_section(self) -> str:
        if self.regression:
            return ""
        s, t = self.summary, self.model.get("temperature")
        if t is None and s.get("test_ece") is None:
            return (
                "## Calibration\n\nNone: this run has no temperature (no validation split, or "
                "trained by an mlplab before calibration); its probabilities are the model's "
                "own (T = 1). `mlplab calibrate RUN` fits one."
            )
        rows = [("temperature T (fitted on the validation split)", f"{t:.4g}" if t else "none (1)")]
        for name, key in (
            ("ECE before (T = 1)", "test_ece_uncalibrated"),
            ("ECE after", "test_ece"),
            ("NLL after", "test_nll"),
            ("Brier score after", "test_brier"),
        ):
            if s.get(key) is not None:
                rows.append((name, _pct(s[key]) if "ECE" in name else _num(s[key])))
        return (
            "## Calibration\n\nEvery probability mlplab shows for this model (predict, serve, "
            "the exports, the report) is divided by the temperature T: the predicted class "
            "never changes, only how sure it says it is. Test split (15 confidence bins):\n\n"
            + _table(("figure", "value"), rows)
        )

    def rejection_section(self) -> str:
        if self.regression:
            return ""
        block, s = self.model.get("rejection"), self.summary
        if not isinstance(block, dict):
            return (
                "## Rejection of unfamiliar inputs\n\nNone: this run has no rejection (no "
                "validation split, or trained by an mlplab before it): every input gets a class."
            )
        rows = [
            ("accepted on validation (`train.accept`)", _pct(block.get("accept"))),
            ("threshold on the ood_score", _num(block.get("threshold"))),
            ("pixel detector / combination", f"{block.get('pixels')} / {block.get('combine')}"),
        ]
        if s.get("test_rejected_fraction") is not None:
            rows.append(("test split rejected", _pct(s["test_rejected_fraction"])))
        if s.get("test_accepted_accuracy") is not None:
            rows.append(
                ("accuracy on the accepted test samples", _pct(s["test_accepted_accuracy"]))
            )
        return (
            "## Rejection of unfamiliar inputs\n\nWhen an input is more unusual than "
            f"{_pct(block.get('accept'))} of the validation images (in its pixels, in the "
            "hidden features, or in how little any class stands out), or is blank or filled "
            'with ink, predict and serve say "not sure" and why, beside the class:\n\n'
            + _table(("figure", "value"), rows)
        )

    def use_section(self) -> str:
        s = self.summary
        if self.regression:
            intended = (
                f"Predicting the target of rows like those of {_cell(self.data_name)}: "
                f"{self._inputs_words()}, in the same columns and units."
            )
        else:
            intended = (
                f"Classifying {self._inputs_words()} like those of {_cell(self.data_name)} into "
                f"its {len(self.classes)} classes; a teaching and baseline model."
            )
        limits = [
            f"It knows only its {len(self.classes)} classes: anything else still gets one of them"
            + (
                ", unless the rejection flags it."
                if isinstance(self.model.get("rejection"), dict)
                else " (this run has no rejection of unfamiliar inputs)."
            )
            if not self.regression
            else "Outside the range of the training rows its predictions are extrapolations, "
            "with no warning.",
            "Its figures are measured on one test split of the same source as the training "
            "data; other sources (other scanners, photos, handwriting, populations) were not "
            "measured and are usually worse.",
        ]
        if isinstance(self.model.get("rejection"), dict):
            accept = self.model["rejection"].get("accept")
            limits.append(
                "What the rejection catches: blank or fully inked frames (by rule), and inputs "
                "whose pixels, hidden features or confidence are far from the training images "
                "(noise, another dataset's images). What it does not: inputs that resemble the "
                "training images but are something else (printed letters, scribbles, drawn "
                "shapes often pass), and a wrong class on a familiar-looking input. By design "
                f"it also turns away about {_pct(1 - accept) if accept is not None else '2%'} "
                "of ordinary inputs (`train.accept`). It is a warning, not a guarantee "
                "(docs/trust.md in mlplab measures it)."
            )
        if not self.regression and not self.tabular:
            c, h, w = self.spec["input_shape"]
            limits.append(
                "`mlplab predict` brings photos to the training images' form: "
                + (
                    "grayscale, cropped to the ink, scaled to 20×20 and centred by mass, as "
                    "MNIST was made (`--style`); a photo far from that form is read less reliably."
                    if c == 1
                    else f"resized to {h}×{w}; a photo unlike the training images is read less "
                    "reliably."
                )
            )
        if (
            isinstance((s.get("samples") or {}).get("test"), int)
            and s["samples"]["test"] < _SMALL_TEST
        ):
            limits.append("The test split is small: its figures have a wide margin.")
        limits.append(
            "No fairness, robustness or security review was made; the license is not stated "
            "unless the front matter's `license` says so."
        )
        return (
            "## Intended use and limits\n\n"
            + intended
            + "\n\n"
            + "\n".join(f"- {line}" for line in limits if line)
        )

    def how_section(self) -> str:
        run = _quoted(self.path)
        if self.regression:
            commands = (
                f"mlplab evaluate {run}                 # the test figures again\n"
                f"mlplab export {run} --format onnx     # TorchScript or ONNX, normalization inside"
            )
            python = (
                "from mlplab import Run\n\n"
                f"model, normalization, _ = Run.open({self.path!r}).load_model()\n"
                "# model: a torch.nn.Module in eval mode; normalization: the training split's"
            )
        else:
            commands = (
                f"mlplab evaluate {run}                 # the test figures again\n"
                f"mlplab predict {run} image.png        # class, probability, top 3, not sure\n"
                f"mlplab serve {run}                    # HTTP API and a drawing page on 127.0.0.1:8000\n"
                f"mlplab export {run} --format onnx     # TorchScript or ONNX, preprocessing inside\n"
                f"mlplab report {run}                   # report.html: confusion, mistakes, weights"
            )
            python = (
                "from mlplab import Run\n"
                "from mlplab.inference import predict\n\n"
                f"model, normalization, classes = Run.open({self.path!r}).load_model()\n"
                f'results = predict({self.path!r}, ["image.png"])  # list of dicts: class, probability, rejected'
            )
        return (
            "## How to use it\n\nWith mlplab installed (`pip install mlplab`; serve needs "
            "`mlplab[serve]`, export `mlplab[export]`, report `mlplab[report]`), from the "
            "folder holding this run:\n\n```\n"
            + commands
            + "\n```\n\nIn Python:\n\n```python\n"
            + python
            + "\n```"
        )

    def cite_section(self, license: str) -> str:
        stamp = re.match(r"(\d{4})(\d{2})\d{2}-\d{6}", self.name)
        key = re.sub(r"[^A-Za-z0-9]+", "-", self.name).strip("-") or "run"
        fields = [
            f"  title        = {{{_bib(self.name)}: {_bib(self._task_words().lower())} of "
            f"{_bib(self.data_name)}}}",
            f"  howpublished = {{mlplab run directory {_bib(self.name)}}}",
            f"  note         = {{Trained with mlplab {_bib(str((self.summary.get('versions') or {}).get('mlplab', __version__)))}"
            f"; license: {_bib(license)}}}",
        ]
        if stamp:
            fields.append(f"  year         = {{{stamp.group(1)}}}")
        return (
            "## How to cite\n\nName the run directory and its `config.yaml` (the whole "
            "recipe); cite the dataset as its authors ask.\n\n```bibtex\n"
            f"@misc{{mlplab-{key},\n" + ",\n".join(fields) + "\n}\n```"
        )


# ----- small helpers ----------------------------------------------------------------------------
def _check_license(license: object) -> None:
    if not isinstance(license, str) or not re.fullmatch(
        r"[A-Za-z0-9][A-Za-z0-9.+-]{0,63}", license
    ):
        raise ConfigError(
            f"the card's license (--license) {printable(repr(license))} is not a license id; use one such as mit, "
            "apache-2.0, cc-by-4.0, other or unknown (letters, digits, '.', '+', '-')"
        )


def _changed(config: Config) -> list[tuple[str, str, str]]:
    """(key, value, default) of every recipe key that differs from mlplab's defaults."""
    now, default = config.to_dict(), Config().to_dict()
    rows = []
    for section, keys in now.items():
        for key, value in keys.items():
            full = f"{section}.{key}"
            if full in _PLUMBING or value == default.get(section, {}).get(key):
                continue
            rows.append((f"`{full}`", _cell(_value(value)), _cell(_value(default[section][key]))))
    return rows


def _value(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(str, value)) + "]"
    return "null" if value is None else str(value)


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    """Text from data (class names, paths) as literal Markdown on one line, in prose or in a
    table."""
    return markdown_text(printable(value))


def _code(value: Any, table: bool = False) -> str:
    """Text from data (a path, a column name) as one code span on one line."""
    return markdown_code(printable(value), table=table)


def _bib(value: str) -> str:
    return re.sub(r"[{}\\]", "", printable(value))


def _names(names: Sequence[str], most: int = 12) -> str:
    shown = ", ".join(_cell(n) for n in names[:most])
    return shown + (f", ... ({len(names)} in all)" if len(names) > most else "")


def _quoted(path: str) -> str:
    return (
        path if re.fullmatch(r"[A-Za-z0-9_./+-]+", path) else "'" + path.replace("'", "'\\''") + "'"
    )


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _pct(value: Any) -> str:
    return f"{value:.2%}" if _finite(value) else "–"


def _num(value: Any) -> str:
    return f"{value:.4g}" if _finite(value) else "–"


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else "–"


def _seconds(value: Any) -> str:
    return f"{value:.3g} s" if _finite(value) else "?"


def _figure(value: Any, form: str) -> str:
    return form.format(value) if _finite(value) else "–"


def _line(slope: Any, intercept: Any) -> str:
    if not (_finite(slope) and _finite(intercept)):
        return "–"
    return f"y = {slope:.4f} x {'−' if intercept < 0 else '+'} {abs(intercept):.4f}"


def _wilson(p: Any, n: Any) -> str:
    """The 95% Wilson score interval of an accuracy ``p`` measured on ``n`` samples."""
    if not _finite(p) or not isinstance(n, int) or n <= 0:
        return ""
    z = 1.959964
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return f"{max(0.0, centre - half):.2%}–{min(1.0, centre + half):.2%}"
