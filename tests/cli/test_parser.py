"""The parser: one add_<command> per command, every flag's default in its help."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.cli.parser import build_parser, flag_name, recipe_flags
from mlplab.config import describe
from mlplab.serve.settings import ServeSettings


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    found = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(found[0].choices)


def shown(value: object) -> set[str]:
    """The ways a help text may write ``value``: 4.0 as 4, a path as written."""
    forms = {str(value)}
    if isinstance(value, float):
        forms |= {f"{value:g}", f"{value:g}".replace("e-0", "e-")}  # 1e-07 as 1e-7
    return forms


def flags_with_a_default() -> list[tuple[str, argparse.Action]]:
    """(command, flag) for every option whose default is a value, not None, [] or off."""
    return [
        (name, action)
        for name, sub in subcommands().items()
        for action in sub._actions
        if action.option_strings
        and action.default not in (None, [], False, argparse.SUPPRESS)
        and not isinstance(action, argparse._HelpAction)
    ]


def test_every_command_has_its_handler() -> None:
    from mlplab.cli import commands

    for name in subcommands():
        assert callable(getattr(commands, "cmd_" + name.replace("-", "_"))), name


@pytest.mark.parametrize(
    "command, action",
    flags_with_a_default(),
    ids=lambda x: x if isinstance(x, str) else "/".join(x.option_strings),
)
def test_every_flag_shows_its_default(command: str, action: argparse.Action) -> None:
    """pytorch/examples' habit: `mlplab CMD --help` says what a flag is when not given."""
    help_text = action.help or ""
    written = [f"default: {v})" for v in shown(action.default)] + [
        f"default {v}]" for v in shown(action.default)
    ]
    written += [f"{v} (default)" for v in shown(action.default)]  # --device cpu (default), ...
    assert any(w in help_text for w in written), (command, action.option_strings, help_text)


def test_the_defaults_test_sees_every_kind_of_flag() -> None:
    seen = {(c, a.option_strings[-1]) for c, a in flags_with_a_default()}
    assert {("serve", "--max-upload-mb"), ("lr-find", "--start"), ("runs", "--sort")} <= seen
    assert ("train", "--resume") not in seen  # no default: not given means a new run


def test_every_config_flag_shows_the_key_and_its_default() -> None:
    """A config flag's own default is None (not given: the preset's, the file's); its help
    shows the config's default."""
    for name in ("train", "config", "sweep", "lr-find"):
        helps = {a.dest: a.help for a in subcommands()[name]._actions}
        for k in describe():
            assert f"[{k.key}; default {k.default}]" in helps[k.key].replace("%%", "%"), k.key


def test_serve_flags_take_their_defaults_from_serve_settings() -> None:
    args = build_parser().parse_args(["serve", "RUN"])
    names = ("host", "port", "log_level", "threads", "max_batch", "request_timeout")
    names += ("max_connections", "max_upload_mb", "batch_wait_ms", "max_megapixels")
    names += ("max_request_megapixels", "max_memory_mb")
    settings = ServeSettings.from_flags(**{n: getattr(args, n) for n in names})
    assert settings == ServeSettings()


def test_config_flags_are_the_config_keys() -> None:
    args = build_parser().parse_args(["train", "--lr", "0.5", "--runs-dir", "r", "--no-download"])
    assert getattr(args, "train.lr") == "0.5" and getattr(args, "run.dir") == "r"
    assert getattr(args, "data.download") is False and getattr(args, "train.epochs") is None
    keys = {k.key: k for k in describe()}
    assert flag_name(keys["run.name"]) == "--name" and flag_name(keys["train.lr"]) == "--lr"
    assert flag_name(keys["train.batch_size"]) == "--batch-size"


def test_positional_run_dir_is_a_path() -> None:
    args = build_parser().parse_args(["evaluate", "runs/x"])
    assert args.run_dir == Path("runs/x") and args.command == "evaluate"


def test_help_shows_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--lr LR" in out and "[train.lr; default 0.001]" in out and "--no-download" in out
    assert "(default: None)" not in out


def test_recipe_flags_lists_what_would_change_a_recipe() -> None:
    args = build_parser().parse_args(["train", "--epochs", "5", "--lr", "0.1", "--set", "a=1"])
    assert recipe_flags(args) == ["--epochs", "--lr", "--set"]
    assert recipe_flags(args, but=("train.epochs",)) == ["--lr", "--set"]
    args = build_parser().parse_args(["train", "--preset", "fast", "--name", "x"])
    assert recipe_flags(args) == ["--name", "--preset"]


WANT = "mlplab {}: error: unknown flag {} (did you mean '{}'?)"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["train", "--hiden", "100"], WANT.format("train", "--hiden", "--hidden")),
        (["train", "--hiden=100"], WANT.format("train", "--hiden", "--hidden")),
        (["serve", "RUN", "--prot", "8001"], WANT.format("serve", "--prot", "--port")),
        (["evaluate", "RUN", "--datset", "usps"], WANT.format("evaluate", "--datset", "--dataset")),
        (
            ["train", "--hiden", "1", "--lrr", "3"],
            "mlplab train: error: unknown flags --hiden (did you mean '--hidden'?), "
            "--lrr (did you mean '--lr'?)",
        ),
        (
            ["runs", "--zzzzzz"],
            "mlplab runs: error: unknown flag --zzzzzz (`mlplab runs --help` lists its flags)",
        ),
    ],
)
def test_an_unknown_flag_gets_the_closest_flags_of_its_command(
    argv: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err == expected + "\n"  # one line, no usage block


def test_every_command_answers_an_unknown_flag_with_did_you_mean(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, sub in subcommands().items():
        positionals = [
            next(iter(a.choices)) if a.choices else "x"
            for a in sub._actions
            if not a.option_strings and a.nargs in (None, "+")
        ]
        with pytest.raises(SystemExit):
            build_parser().parse_args([name, *positionals, "--debgu"])
        assert capsys.readouterr().err == (
            f"mlplab {name}: error: unknown flag --debgu (did you mean '--debug'?)\n"
        ), name


def test_a_command_flag_before_the_command_says_where_it_goes(capsys) -> None:
    """`mlplab --debug presets`: the flag is the command's, so not 'did you mean --debug'."""
    with pytest.raises(SystemExit) as exit_:
        main(["--debug", "presets"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == (
        "mlplab: error: --debug goes after the command: mlplab presets --debug ..."
    )
