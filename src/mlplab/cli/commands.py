"""The ``mlplab`` commands: one ``cmd_<name>`` per command, each a thin shell over the API.

A handler takes the parsed arguments, calls the API and prints what it returns; the rules
live in the API. ``config_from_args`` merges preset, ``--config`` file, flags and ``--set
key=value`` (later sources win) and validates the result once.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..analysis.evaluate import evaluate
from ..config import PRESETS, Config, describe
from ..data.sources import DATASETS
from ..errors import ConfigError
from ..files.limits import printable
from ..progress import logger
from ..training.loop import resume, train
from ..trust.calibration import calibrate
from .parser import recipe_flags


def cmd_train(args: argparse.Namespace) -> int:
    if args.resume is not None:
        result = resume(
            args.resume,
            epochs=_epochs_flag(args),
            recipe_changes=recipe_flags(args, but=("train.epochs",)),
        )
    else:
        try:
            result = train(config_from_args(args))
        except KeyboardInterrupt:
            logger.warning("interrupted before the first epoch ended: no run directory was kept")
            raise
    if int(os.environ.get("RANK", "0")) != 0:  # torchrun: rank 0 speaks for all
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(
            f"mlplab: interrupted; continue with: mlplab train --resume {result.run_dir}",
            file=sys.stderr,
        )
        return 130
    if args.quiet:
        print(result.run_dir)  # the one line a script needs
    else:
        logger.info(f"run directory: {result.run_dir}")
    return 0


def _epochs_flag(args: argparse.Namespace) -> int | None:
    """--epochs as a number of epochs, read as the config reads train.epochs."""
    epochs = getattr(args, "train.epochs")
    if epochs is None:
        return None
    return Config().override({"train.epochs": epochs}, source="--epochs").train.epochs


def cmd_evaluate(args: argparse.Namespace) -> int:
    metrics = evaluate(
        args.run_dir,
        split=args.split,
        dataset=args.dataset,
        data_dir=args.data_dir,
        device=args.device,
        reject=not args.no_reject,
        allow_class_mismatch=args.allow_class_mismatch,
    )
    if metrics["class_mismatch"]:  # on stderr: --json's stdout stays JSON
        print(f"warning: {metrics['class_mismatch']}", file=sys.stderr)
    if args.json:
        print(json.dumps(metrics, indent=2))
        return 0
    print(
        f"{printable(args.run_dir)}: {printable(metrics['dataset'])} {metrics['split']}, "
        f"{metrics['samples']:,} samples"
    )
    loss = f"loss {metrics['loss']:.4f} ({metrics['loss_function']})"
    if metrics["task"] == "regression":  # no accuracy, no classes: the regression's figures
        r2, rmse, mae = metrics["r2"], metrics["rmse"], metrics["mae"]
        print(f"  {loss}   R² {r2:.4f}   RMSE {rmse:.4g}   MAE {mae:.4g}")
        return 0
    print(f"  {loss}   accuracy {metrics['accuracy']:.2%}")
    print(
        f"  calibrated   ECE {metrics['ece']:.2%} (uncalibrated {metrics['ece_uncalibrated']:.2%})"
        f"   NLL {metrics['nll']:.4f}   Brier {metrics['brier']:.4f}   "
        f"temperature {metrics['temperature']:.3f}"
    )
    if metrics["rejected_fraction"] is not None:
        print(
            f"  rejected {metrics['rejected_fraction']:.2%} as unlike the training images   "
            "accuracy on the accepted "
            + (
                "- (none accepted)"
                if metrics["accepted_accuracy"] is None
                else f"{metrics['accepted_accuracy']:.2%}"
            )
        )
    elif metrics["rejection_off"]:
        print(f"  {metrics['rejection_off']}")
    print(f"  {'class':<14} accuracy")
    for name, acc in zip(metrics["classes"], metrics["per_class_accuracy"], strict=True):
        print(f"  {printable(name):<14} {acc:7.2%}")
    return 0


def cmd_robustness(args: argparse.Namespace) -> int:
    from ..analysis.robustness import FILE, parse_corruptions, parse_severities, robustness
    from ..tables import format_table

    result = robustness(
        args.run_dir,
        corruptions=parse_corruptions(args.corruptions) if args.corruptions else None,
        severities=parse_severities(args.severities),
        seed=args.seed,
        dataset=args.dataset,
        data_dir=args.data_dir,
        device=args.device,
        reject=not args.no_reject,
        limit=args.limit,
    )
    for why in result.skipped.values():  # on stderr: --json's stdout stays JSON
        print(f"note: {why}", file=sys.stderr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(
        f"{printable(args.run_dir)}: {printable(result.dataset)} test, {result.samples:,} "
        f"images, seed {result.seed}, {result.seconds:.0f} s"
    )
    print(format_table(*result.rows()).rstrip("\n"))
    print(
        f"mean corruption accuracy {result.mean_corruption_accuracy:.2%} "
        f"(clean {result.clean.accuracy:.2%})"
    )
    if result.rejection_off:
        print(result.rejection_off)
    print(Path(args.run_dir) / FILE)
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    result = calibrate(args.run_dir, args.split, args.dataset, data_dir=args.data_dir)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(
        f"{printable(args.run_dir)}: temperature {result.temperature_before:.3f} -> "
        f"{result.temperature:.3f}, fitted on {printable(result.dataset)} {result.split} "
        f"({result.samples:,} samples)"
    )
    print(
        f"  ECE {result.ece_before:.2%} -> {result.ece_after:.2%}   NLL {result.nll_before:.4f} "
        f"-> {result.nll_after:.4f}   Brier {result.brier_before:.4f} -> {result.brier_after:.4f}"
    )
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    print(f"{'dataset':<16} {'status':<9} where / description")
    for name, source in DATASETS.items():
        place = source.locate(args.data_dir)
        print(f"{name:<16} {place.status:<9} {place.where}")
        print(f"{'':<26} {source.description}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from ..data.inspection import inspect_source

    report = inspect_source(
        args.source,
        args.data_dir,
        args.format,
        image_shape=args.image_shape,
        pixel_scale=args.pixel_scale,
        images_key=args.images_key,
        labels_key=args.labels_key,
    )
    print(json.dumps(report.to_dict(), indent=2, default=str) if args.json else report.to_text())
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    for name, preset in PRESETS.items():
        print(f"{name:<11} {preset['help']}")
    return 0


def cmd_machine(args: argparse.Namespace) -> int:
    from ..training.machine import measure_machine, run_shape

    config = config_from_args(args)
    shape, flops, source = run_shape(config)
    machine = measure_machine(shape, refresh=args.refresh)
    precision, why_precision = machine.precision()
    threads, why_threads = machine.threads(flops)
    if args.json:
        record = machine.to_json() | {
            "cached": machine.cached,
            "step_flops": flops,
            "choice": {
                "precision": precision,
                "precision_reason": why_precision,
                "threads": threads,
                "threads_reason": why_threads,
            },
        }
        print(json.dumps(record, indent=2))
        return 0
    batch, inputs, outputs = shape
    when = "cached" if machine.cached else "measured now"
    print(f"cpu        {machine.model}, {machine.cores} usable cores")
    print(
        f"isa        {', '.join(machine.isa) or 'none of AVX2/AVX-512/AMX'} (torch uses {machine.capability})"
    )
    print(f"shape      {batch} x {inputs} @ {inputs} x {outputs} (the first layer; {source})")
    for name, rates in machine.rates.items():
        cells = "  ".join(f"{n} thread{'s' * (n > 1)}: {r:7.1f}" for n, r in rates.items())
        print(f"{name:<10} {cells} GFLOP/s")
    print(f"precision  {precision}: {why_precision}")
    print(f"threads    {threads}: {why_threads}")
    print(f"({when} {machine.measured}, torch {machine.torch}; --refresh measures again)")
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    if args.list and args.markdown:
        print("| key | default | meaning |\n| --- | --- | --- |")
        for k in describe():
            print(f"| `{k.key}` | `{k.default}` | {k.help} |")
        return 0
    if args.list:
        for k in describe():
            print(f"{k.key:<22} {k.default!s:<12} {k.help}")
        return 0
    print(config_from_args(args).to_yaml(), end="")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from ..training.demo import demo_recipe

    config, dataset = demo_recipe(args.data_dir, args.runs_dir, args.epochs)
    result = train(config, dataset=dataset)
    metrics = evaluate(result.run_dir, data_dir=args.data_dir)
    logger.info(
        f"evaluate: test accuracy {metrics['accuracy']:.2%} on {metrics['samples']:,} "
        f"{metrics['dataset']} images"
    )
    logger.info(f"run directory: {result.run_dir}  (try: mlplab evaluate {result.run_dir})")
    return 0


def _analysis_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The settings of parser.add_analysis_flags, for report and plot."""
    names = ("data_dir", "device", "tsne_samples", "seed")
    return {name: getattr(args, name) for name in names}


def _open_in_browser(path: Path) -> None:
    import webbrowser

    if not webbrowser.open(path.resolve().as_uri()):
        logger.warning(f"could not open a web browser here; open {path} yourself")


def cmd_report(args: argparse.Namespace) -> int:
    from ..report.run_report import report

    path = report(args.run_dir, **_analysis_settings(args))
    print(path)
    if args.open:
        _open_in_browser(path)
    return 0


def cmd_card(args: argparse.Namespace) -> int:
    from ..run.card import card_text, write_card

    if args.out == "-":
        print(card_text(args.run_dir, license=args.license), end="")
    else:
        print(write_card(args.run_dir, args.out, force=args.force, license=args.license))
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from ..report.run_report import plot

    print(plot(args.run_dir, args.figure, args.out, **_analysis_settings(args)))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from ..report.compare import check_out, compare, compare_runs

    check_out(args.out)  # before the tables are printed: a bad --out is the only line
    comparison = compare_runs(args.run_dirs)
    print(comparison.table())
    print()
    print(comparison.weight_table())
    path = compare(comparison, args.out)
    print(f"\n{path}")
    if args.open:
        _open_in_browser(path)
    return 0


def cmd_explore(args: argparse.Namespace) -> int:
    from ..report.explore import explore

    label = args.label if args.label is not None else 0  # --class: a name or an index
    path = explore(
        args.dataset, args.out, data_dir=args.data_dir, label=label, per_class=args.per_class
    )
    print(path)
    if args.open:
        _open_in_browser(path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from ..inference.export import export  # torch.onnx and friends load only when asked for

    result = export(
        args.run_dir,
        args.format,
        args.out,
        data_dir=args.data_dir,
        force=args.force,
        reject=not args.no_reject,
    )
    print(result.path)
    print(
        f"parity: max |{result.format} - eager| = {result.max_abs_diff:.2e} (outputs up to "
        f"{result.max_abs_output:.3g}) over {result.images} images at batch sizes "
        f"{', '.join(map(str, result.batch_sizes))}: {result.inputs}"
    )
    print(result.rejection)
    if result.max_score_diff is not None:
        print(
            f"parity: max |ood_score - eager| = {result.max_score_diff:.2e} (tolerance "
            f"{result.score_tolerance:g}); {result.rejected} of {result.images} rejected; "
            f"reason codes equal but for {result.codes_at_threshold} at the threshold"
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import warnings

    from ..inference import Predictor
    from ..trust.rejection import not_sure

    if args.top_k < 1:
        raise ConfigError(f"--top-k must be >= 1; got {args.top_k}")
    if not 0 < args.max_megapixels <= 1e6:
        raise ConfigError(f"--max-megapixels must be > 0; got {args.max_megapixels:g}")
    with warnings.catch_warnings():  # Pillow's own (bomb, corrupt EXIF): mlplab says one line
        warnings.filterwarnings("ignore", module=r"PIL\.")
        predictor = Predictor(
            args.run_dir,
            style=args.preprocess,
            max_pixels=int(args.max_megapixels * 1e6),
            reject=not args.no_reject,
        )
        results = predictor.classify(args.images, args.top_k, show=args.show)
        explained = None
        if args.explain is not None:
            from ..inference.explain import Explainer

            record = Explainer(predictor=predictor).write(
                args.images, args.explain, flag="--explain"
            )
            explained = _explained(record, args.explain)
    if predictor.rejection_off:  # said once, on stderr: stdout may be --json
        print(f"mlplab: {predictor.rejection_off}", file=sys.stderr)
    if args.json:
        print(json.dumps(results, indent=2))
        if explained:
            print(f"mlplab: {explained}", file=sys.stderr)
        return 0
    files = [printable(r["file"]) for r in results]  # a name may hold escape codes
    width = max(map(len, files))
    for name, r in zip(files, results, strict=True):
        top = "  ".join(f"{printable(t['class'])} {t['probability']:6.1%}" for t in r["top"])
        shown = f"  (model input: {printable(r['shown'])})" if "shown" in r else ""
        best = f"{printable(r['class']):>5}  {r['probability']:6.1%}"
        if r["rejected"]:
            best = f"{best}  {not_sure(predictor.classes, r['ood_score'], r['reason'])}"
        print(f"{name:<{width}}  {best}   top {len(r['top'])}: {top}{shown}")
    if explained:
        print(explained)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from ..inference.explain import Explainer

    explainer = Explainer(args.run_dir, style=args.preprocess)
    record = explainer.write(
        args.images,
        args.out,
        args.method,
        args.target,
        steps=args.steps,
        window=args.window,
        stride=args.stride,
    )
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    files = [printable(e["file"] or "-") for e in record["images"]]
    width = max(map(len, files), default=0)
    for name, e in zip(files, record["images"], strict=True):
        why = f"{printable(e['target'])} {e['target_probability']:6.1%}"
        if e["target"] != e["class"]:
            why += f" (predicted {printable(e['class'])} {e['probability']:.1%})"
        print(f"{name:<{width}}  {why}  {printable(args.out / e['overlay'])}")
    print(_explained(record, args.out))
    return 0


def _explained(record: dict[str, Any], out: Path) -> str:
    """The closing line of explain and predict --explain: what was written, and for
    integrated gradients how well the attributions add up."""
    n = len(record["images"])
    line = f"{record['method']}: {n} image{'s' * (n != 1)} explained into {printable(out)}"
    if "completeness" in record:
        c = record["completeness"]
        line += (
            f"; completeness error at most {c['max_error']:.3g} nats "
            f"({c['max_relative_error']:.1%} of f(x) - f(background))"
        )
    return line


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve import ServeSettings, serve

    settings = ServeSettings.from_flags(
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        threads=args.threads,
        max_upload_mb=args.max_upload_mb,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        max_megapixels=args.max_megapixels,
        max_request_megapixels=args.max_request_megapixels,
        max_memory_mb=args.max_memory_mb,
        request_timeout=args.request_timeout,
        max_connections=args.max_connections,
        reject=not args.no_reject,
    )
    serve(args.run_dir, settings)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..sweep import create_sweep, describe_sweep, resume_sweep, run_sweep
    from ..sweep.report import summarize, sweep_report

    # the options given, by name, for the sweep API to say which of them go together
    sweep_options = (
        ("--space", args.space),
        ("--grid", args.grid),
        ("--seeds", args.seeds),
        ("--sampler", args.sampler),
        ("--pruner", args.pruner),
        ("--sampler-seed", args.sampler_seed),
        ("--trials", args.trials),
        ("--resume", args.resume is not None),
        ("--out", args.out is not None),
    )
    given = recipe_flags(args) + [flag for flag, value in sweep_options if value]
    storage, study = args.storage, args.study
    if args.action == "report":
        report = sweep_report(args.sweep_dir, args.out, storage=storage, study=study, flags=given)
        print(report.text(), end="")
        print(f"wrote    {', '.join(str(f) for f in report.files)}")
        return 0
    if args.resume is not None:
        sweep = resume_sweep(
            args.resume or None,
            storage=storage,
            study=study,
            sweeps_dir=args.sweeps_dir,
            trials=args.trials,
            flags=given,
        )
    else:
        sweep = create_sweep(
            config_from_args(args),
            space=args.space,
            grid=args.grid or None,
            seeds=args.seeds,
            trials=args.trials,
            storage=storage,
            study=study,
            sweeps_dir=args.sweeps_dir,
            sampler=args.sampler,
            pruner=args.pruner,
            seed=args.sampler_seed,
            flags=given,
        )
    logger.info(describe_sweep(sweep))
    try:
        done = run_sweep(sweep, verbose=args.verbose)
    except KeyboardInterrupt:
        logger.warning(
            f"interrupted; the stopped trial is queued again. Continue with: {sweep.join_command()}"
        )
        raise
    report = summarize(sweep)
    logger.info(f"done     {len(done)} trial{'s' * (len(done) != 1)} here; {report.counts_line()}")
    logger.info(f"best     {report.best_line()}")
    logger.info(f"report   {sweep.report_command()}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from ..run.outputs import OLD_SWEEPS, ROOT
    from ..run.table import filter_runs, list_runs, runs_table, sort_runs, to_json

    rows = sort_runs(filter_runs(list_runs(args.root), args.filter), args.sort, args.reverse)
    if args.json:
        print(to_json(rows))
    elif args.markdown:
        print(runs_table(rows, "markdown", root=args.root), end="")
    elif rows:
        print(runs_table(rows, root=args.root), end="")
    else:
        where = args.root or " or ".join(str(p) for p in (ROOT, OLD_SWEEPS) if p.is_dir())
        print(f"no runs under {where}{' match ' + ', '.join(args.filter) if args.filter else ''}")
    if args.tensorboard is not None:
        from ..report.tensorboard import write_events_for_runs

        readable = [row.path for row in rows if row.status not in ("empty", "unreadable")]
        for exc in write_events_for_runs(readable, args.root or Path(), args.tensorboard):
            print(f"mlplab: warning: {printable(exc)}; its events are skipped", file=sys.stderr)
        print(
            f"tensorboard: {args.tensorboard} (view with: tensorboard --logdir {args.tensorboard})",
            file=sys.stderr,
        )
    return 0


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from ..report.tensorboard import write_events

    out = write_events(args.run_dir, args.out, samples=args.samples, data_dir=args.data_dir)
    print(out)
    print(f"view with: tensorboard --logdir {out}", file=sys.stderr)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from ..extras import require
    from ..report.lr_find import save_lr_find
    from ..training.lr_find import lr_find

    require("matplotlib.figure", "report", "the lr-find plot")  # before minutes of work, not after
    result = lr_find(
        config_from_args(args),
        start=args.start,
        end=args.end,
        steps=args.steps,
        stop_factor=args.stop_factor,
    )
    png, data = save_lr_find(result, args.out)
    print(result.describe())
    print(f"wrote    {png}, {data}")
    return 0


def config_from_args(args: argparse.Namespace) -> Config:
    """Preset, then --config, then flags, then --set; validated once, on the merged result."""
    config = Config.preset(args.preset) if args.preset else Config()
    if args.config:
        config = config.merge_file(args.config, validate=False)
    flags: dict[str, Any] = {
        k.key: getattr(args, k.key) for k in describe() if getattr(args, k.key) is not None
    }
    config = config.override(flags, source="command line", validate=False)
    return config.with_overrides(args.set, validate=False, source="--set").validate()
