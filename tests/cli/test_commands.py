"""The handlers are shells: arguments in, one API call, its answer printed. Spied here; the
end-to-end runs of each command are in test_cli.py and beside each API's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlplab.cli import main
from mlplab.errors import ConfigError
from mlplab.serve.settings import MIB, ServeSettings


def test_serve_hands_the_flags_to_the_api_as_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import mlplab.serve

    calls: list[tuple[Path, ServeSettings]] = []
    monkeypatch.setattr(mlplab.serve, "serve", lambda run, settings: calls.append((run, settings)))
    argv = ["serve", "RUN", "--port", "0", "--max-upload-mb", "2", "--max-megapixels", "1.5"]
    assert main([*argv, "--batch-wait-ms", "5", "--max-connections", "9"]) == 0
    assert calls == [
        (
            Path("RUN"),
            ServeSettings(
                port=0,
                max_upload_bytes=2 * MIB,
                max_pixels=1_500_000,
                max_wait_ms=5.0,
                max_connections=9,
            ),
        )
    ]


def test_serve_flag_errors_come_before_the_server(capsys, monkeypatch) -> None:
    import mlplab.serve

    monkeypatch.setattr(mlplab.serve, "serve", lambda *a: pytest.fail("started"))
    assert main(["serve", "RUN", "--max-memory-mb", "0"]) == 2
    assert (
        "--max-memory-mb and --request-timeout must be in (0, 1,000,000]" in capsys.readouterr().err
    )


def test_data_inspect_is_one_call(capsys, monkeypatch) -> None:
    import mlplab.data.inspection as inspection

    seen: list[tuple] = []

    def spy(source, data_dir=None, format=None, **options):
        seen.append((source, data_dir, format, options))
        raise ConfigError("spied")

    monkeypatch.setattr(inspection, "inspect_source", spy)
    assert main(["data", "inspect", "digits", "--data-dir", "D", "--pixel-scale", "1"]) == 2
    assert seen == [
        (
            "digits",
            "D",
            None,
            {"image_shape": None, "pixel_scale": "1", "images_key": None, "labels_key": None},
        )
    ]


def test_demo_takes_its_recipe_from_the_api(capsys, monkeypatch) -> None:
    import mlplab.training.demo as demo

    def spy(data_dir, runs_dir, epochs):
        raise ConfigError(f"spied {data_dir} {runs_dir} {epochs}")

    monkeypatch.setattr(demo, "demo_recipe", spy)
    assert main(["demo", "--data-dir", "D", "--epochs", "3"]) == 2
    assert capsys.readouterr().err == "mlplab: error: spied D runs 3\n"


def test_resume_passes_the_other_recipe_flags_to_the_api(capsys, monkeypatch) -> None:
    import mlplab.cli.commands as commands

    seen: list[dict] = []

    def spy(run, **kwargs):
        seen.append(kwargs)
        raise ConfigError("spied")

    monkeypatch.setattr(commands, "resume", spy)
    assert main(["train", "--resume", "R", "--epochs", "7", "--lr", "0.1", "--preset", "fast"]) == 2
    assert seen == [{"epochs": 7, "recipe_changes": ["--lr", "--preset"]}]
