"""The public API: pinned, so that removing or renaming a name is a deliberate act."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import mlplab
from mlplab.cli import main

README = Path(__file__).parents[1] / "README.md"


def test_public_names() -> None:
    assert sorted(mlplab.__all__) == sorted([
        "MLP", "PRESETS", "Config", "ConfigError", "DataError", "Dataset", "DownloadError",
        "FormatError", "MlplabError", "Normalization", "Run", "RunError", "Split", "TrainResult",
        "TrainingError", "__version__", "evaluate", "explain", "load_dataset", "model_summary", "Epoch", "resume",
            "MissingExtraError", "RunAnalysis",
        "split_train_val", "train",
    ])  # fmt: skip
    for name in mlplab.__all__:
        assert hasattr(mlplab, name), name


def test_errors_form_one_tree() -> None:
    for name in (
        "ConfigError",
        "DataError",
        "DownloadError",
        "FormatError",
        "RunError",
        "TrainingError",
    ):
        assert issubclass(getattr(mlplab, name), mlplab.MlplabError)
    assert issubclass(mlplab.FormatError, mlplab.DataError) and issubclass(
        mlplab.DownloadError, mlplab.DataError
    )


def readme_train_commands() -> list[str]:
    commands = re.findall(r"^mlplab train [^\n#]*", README.read_text(), flags=re.MULTILINE)
    assert len(commands) >= 3
    return [c.strip() for c in commands]


@pytest.mark.parametrize("command", readme_train_commands())
def test_readme_train_examples_run(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each `mlplab train ...` line of the README, as a dry run on the bundled digits."""
    (tmp_path / "my.yaml").write_text("train:\n  epochs: 2\n")
    argv = [
        *shlex.split(command)[1:],
        "--dataset",
        "digits",
        "--dry-run",
        "--runs-dir",
        str(tmp_path / "runs"),
    ]
    assert main(argv) == 0, capsys.readouterr().err


def test_every_submodule_name_is_the_module() -> None:
    """`import mlplab.x` gives the module x, never a function re-exported under its name."""
    import importlib
    import pkgutil
    import types

    for info in pkgutil.iter_modules(mlplab.__path__):
        if info.name == "__main__":  # importing it runs the CLI
            continue
        module = importlib.import_module(f"mlplab.{info.name}")
        assert isinstance(getattr(mlplab, info.name), types.ModuleType), info.name
        assert getattr(mlplab, info.name) is module


def test_lazy_exports_match_all_and_load_no_torch_until_used() -> None:
    import subprocess
    import sys

    assert set(mlplab.__all__) == {*mlplab._EXPORTS, "__version__"}
    # the config needs no torch (it imports only errors, vocab and files); the model does
    code = (
        "import sys, mlplab; print('torch' in sys.modules); mlplab.Config; "
        "print('torch' in sys.modules); mlplab.MLP; print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False", "True"]
