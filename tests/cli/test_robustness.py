"""mlplab robustness: the table, the headline line and robustness.json's path; --json; the
refusals in one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic import quick

from mlplab import train
from mlplab.analysis.robustness import FILE
from mlplab.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("robustness-cli")
    return train(quick(tmp, **{"data.dataset": "digits", "train.epochs": 1})).run_dir


def test_the_cli_prints_the_table_and_the_path(run: Path, capsys) -> None:
    assert main(["robustness", str(run), "--corruptions", "shear,stripe", "--severities",
                 "1-2", "--limit", "50"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith(f"{run}: digits test, 50 images, seed 0")
    assert lines[1].split() == ["corruption", "s1", "s2", "mean", "rejected", "ece"]
    assert lines[2].split()[0] == "clean" and lines[3].split()[0] == "shear"
    assert lines[-2].startswith("mean corruption accuracy ") and lines[-1] == str(run / FILE)
    assert main(["robustness", str(run), "--corruptions", "shear", "--severities", "3",
                 "--limit", "20", "--json", "--no-reject"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert data["corruptions"]["shear"]["3"]["rejected_fraction"] is None
    assert main(["robustness", str(run), "--severities", "9"]) == 2
    assert "--severities must be 1 to 5" in capsys.readouterr().err
    assert main(["robustness", str(run), "--corruptions", "rotat"]) == 2
    err = capsys.readouterr().err
    assert "corruption must be one of" in err and "did you mean" in err
    assert len(err.strip().splitlines()) == 1
