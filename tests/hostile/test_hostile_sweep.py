"""Sweeps fed hostile or careless input: a --space that is a FIFO, a device, huge or binary;
a shared sweep folder whose sweep.json points at another database (a planted SQLite path,
a server) or whose study.db / lock file is a link; a grid × seeds of a billion trials.
Each ends in one line, creates nothing outside what the user named, and stays small."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from mlplab import Config, ConfigError, RunError
from mlplab.cli import main
from mlplab.sweep import MAX_TRIALS, add_trials, create_sweep, open_sweep, parse_space, run_sweep
from mlplab.sweep.report import sweep_report

TINY = {
    "data.dataset": "digits",
    "model.hidden": [16],
    "train.epochs": 1,
    "train.lr": 0.01,
    "train.threads": 1,
    "run.name": "h",
}


@pytest.fixture
def base() -> Config:
    return Config().override(TINY)


# ----- --space FILE ------------------------------------------------------------------------------
def test_space_fifo_is_refused_without_blocking(base: Config, tmp_path: Path) -> None:
    fifo = tmp_path / "space.yaml"
    os.mkfifo(fifo)  # read_text() waited for a writer forever
    started = time.monotonic()
    with pytest.raises(
        ConfigError, match=r"^cannot read space file: .*space.yaml: a FIFO \(named pipe\), not a"
    ):
        parse_space(fifo, base)
    assert time.monotonic() - started < 5


def test_space_device_is_refused(base: Config) -> None:
    # read_text() of /dev/zero grew to 13.6 GB
    with pytest.raises(
        ConfigError, match=r"^cannot read space file: /dev/zero: a character device, not a"
    ):
        parse_space("/dev/zero", base)


def test_space_over_1_mib_is_refused(base: Config, tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:  # sparse: 1 GB on paper, nothing on disk
        f.truncate(1024**3)
    with pytest.raises(
        ConfigError,
        match=r"^space file .*big.yaml is over 1 MiB; a search space is a few lines such as",
    ):
        parse_space(big, base)


def test_space_not_utf8_is_one_line(base: Config, tmp_path: Path) -> None:
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"train.lr: {type: float, low: 1e-4, high: 1e-2}  # \xe9t\xe9\n")
    with pytest.raises(
        ConfigError, match=r"^space file .*latin.yaml is not UTF-8 text \(invalid .* at byte 50\)$"
    ):
        parse_space(latin, base)


def test_space_alias_bomb_message_stays_short(base: Config, tmp_path: Path) -> None:
    # five levels of nine references: 59,049 items, whose repr in the message was 300 KB
    levels = ["&a [x, x, x, x, x, x, x, x, x]"] + [
        f"&{c} [{', '.join([f'*{p}'] * 9)}]" for p, c in zip("abcd", "bcde", strict=True)
    ]
    (tmp_path / "bomb.yaml").write_text(
        f"train.lr: {{type: float, high: 1, low: [{', '.join(levels)}]}}\n"
    )
    with pytest.raises(ConfigError, match=r"^space file .*'train.lr' low must be a finite number"):
        parse_space(tmp_path / "bomb.yaml", base)
    with pytest.raises(ConfigError) as info:
        parse_space(tmp_path / "bomb.yaml", base)
    assert len(str(info.value)) < 400


def test_cli_space_fifo_is_one_line(tmp_path: Path, capsys) -> None:
    os.mkfifo(tmp_path / "s.yaml")
    argv = [
        "sweep",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--space",
        str(tmp_path / "s.yaml"),
        "--sweeps-dir",
        str(tmp_path / "sweeps"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlplab: error: cannot read space file: ") and err.count("\n") == 1
    assert "a FIFO (named pipe)" in err
    assert not (tmp_path / "sweeps").exists()


# ----- sweep.json, study.db and the lock file of a shared sweep folder ---------------------------
@pytest.fixture
def folder(base: Config, tmp_path: Path) -> Path:
    """A sweep folder made by mlplab (one queued grid trial, nothing run)."""
    return create_sweep(base, grid=["model.head=logits"], sweeps_dir=tmp_path / "sweeps").path


def _plant(folder: Path, storage: str) -> None:
    info = json.loads((folder / "sweep.json").read_text())
    (folder / "sweep.json").write_text(json.dumps({"study": info["study"], "storage": storage}))


def test_planted_sqlite_storage_is_refused_and_not_created(folder: Path, tmp_path: Path) -> None:
    planted = tmp_path / "elsewhere" / "planted.db"
    planted.parent.mkdir()
    _plant(folder, f"sqlite:///{planted}")
    message = (
        r"sweep.json records the storage sqlite:///.*planted.db, not the sweep folder's "
        r"own study.db; mlplab opens another database only when you name it: pass it "
        r"with --storage URL"
    )
    with pytest.raises(ConfigError, match=message):
        open_sweep(folder)  # `mlplab sweep --resume SW` created planted.db
    with pytest.raises(ConfigError, match=message):
        sweep_report(folder)  # and so did `mlplab sweep report SW`
    assert not planted.exists()
    assert not list(planted.parent.iterdir())  # no lock file either


def test_named_storage_is_used_when_the_user_passes_it(folder: Path) -> None:
    own = f"sqlite:///{(folder / 'study.db').resolve()}"
    _plant(folder, "postgresql://u:***@127.0.0.1:1/db")
    assert open_sweep(folder, storage=own, join=False).counts() == {"waiting": 1}


def test_server_storage_is_refused_without_connecting(folder: Path, monkeypatch) -> None:
    from mlplab.sweep import folders

    def no_connection(url: str):
        raise AssertionError(f"connected to {url}")

    monkeypatch.setattr(folders, "open_storage", no_connection)
    _plant(folder, "postgresql://u:p@127.0.0.1:1/db")
    with pytest.raises(
        ConfigError,
        match=r"records the storage postgresql://u:\*\*\*@127.0.0.1:1/db, not the sweep "
        r"folder's own study.db;",
    ):
        open_sweep(folder)  # the password is not echoed, and no connection is made


def test_own_sqlite_url_is_accepted(folder: Path) -> None:
    _plant(folder, f"sqlite:///{(folder / 'study.db').resolve()}")
    assert open_sweep(folder, join=False).counts() == {"waiting": 1}


def test_missing_or_linked_study_db_is_refused(folder: Path, tmp_path: Path) -> None:
    (folder / "study.db").rename(tmp_path / "moved.db")
    with pytest.raises(RunError, match=r"the sweep's study study.db is missing; copy the whole"):
        open_sweep(folder)
    assert not (folder / "study.db").exists()  # not created empty
    (folder / "study.db").symlink_to(tmp_path / "moved.db")  # a link may point anywhere
    with pytest.raises(RunError, match=r"study.db: not a regular file \(a link, a FIFO"):
        sweep_report(folder)
    (folder / "study.db").unlink()
    (folder / "study.db").write_text("not sqlite")
    with pytest.raises(RunError, match=r"study.db: not a SQLite database \(the sweep's study\)$"):
        open_sweep(folder)


def test_huge_or_odd_sweep_json_is_one_line(folder: Path) -> None:
    info = folder / "sweep.json"
    info.unlink()
    with open(info, "wb") as f:  # sparse 1 GB: read_text() took 2.3 GB
        f.truncate(1024**3)
    with pytest.raises(RunError, match=r"^sweep description .*sweep.json is over 64.0 KiB; a "):
        open_sweep(folder)
    info.unlink()
    os.mkfifo(info)
    with pytest.raises(RunError, match=r"^cannot read sweep description: .*a FIFO \(named pipe\)"):
        open_sweep(folder)
    info.unlink()
    info.write_text(json.dumps({"study": ["x"] * 10_000, "storage": "study.db"}))
    with pytest.raises(
        RunError, match=r"not a sweep description \('study' must be a non-empty string; got \["
    ) as caught:
        open_sweep(folder)
    assert len(str(caught.value)) < 300
    info.write_bytes(b'{"study": "\xff", "storage": "study.db"}')
    with pytest.raises(RunError, match=r"sweep.json is not UTF-8 text"):
        open_sweep(folder)


def test_a_file_is_not_a_sweep_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunError, match=r"^.*f is a file, not a sweep folder$"):
        open_sweep(tmp_path / "f")


def test_lock_file_link_is_not_followed(folder: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.txt"
    (folder / "study.db.lock").symlink_to(target)
    with pytest.raises(RunError, match=r"cannot open the sweep's lock file .*study.db.lock: "):
        run_sweep(open_sweep(folder))
    assert not target.exists()  # open(..., "a") created it
    (folder / "study.db.lock").unlink()
    os.mkfifo(folder / "study.db.lock")
    started = time.monotonic()
    with pytest.raises(RunError, match=r"cannot open the sweep's lock file"):
        run_sweep(open_sweep(folder))  # open(..., "a") of a FIFO waited for a reader
    assert time.monotonic() - started < 5


def test_study_name_from_a_database_cannot_name_a_path(tmp_path: Path) -> None:
    import optuna

    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(storage=url, study_name="../../escape")
    with pytest.raises(ConfigError, match=r"^study name '../../escape' cannot name a sweep folder"):
        open_sweep(storage=url, sweeps_dir=tmp_path / "a" / "b")
    assert not (tmp_path / "escape").exists()


# ----- how many trials -------------------------------------------------------------------------
def test_grid_times_seeds_is_capped_before_building(base: Config, tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(
        ConfigError,
        match=r"^a sweep queues at most 100,000 trials; 1 × 1,000,000,000 \(--grid values × "
        r"--seeds\) makes 1,000,000,000: use fewer values or seeds",
    ):  # built a billion trials first (13 GB in 30 s)
        create_sweep(base, grid=["train.lr=0.1"], seeds=10**9, sweeps_dir=tmp_path)
    many = [
        f"train.{k}={','.join(str(i) for i in range(1, 20))}"
        for k in ("epochs", "batch_size", "patience", "seed")
    ]
    with pytest.raises(ConfigError, match=r"19 × 19 × 19 × 19 × 1 .* makes 130,321:"):
        create_sweep(base, grid=many, sweeps_dir=tmp_path)
    assert time.monotonic() - started < 5
    assert not list(tmp_path.iterdir())


def test_search_trials_are_capped(base: Config, tmp_path: Path) -> None:
    space = {"train.lr": {"type": "float", "low": 1e-3, "high": 1e-1}}
    with pytest.raises(ConfigError, match=r"^a sweep queues at most 100,000 trials; --trials"):
        create_sweep(base, space=space, trials=10**9, sweeps_dir=tmp_path)
    s = create_sweep(base, space=space, trials=1, sweeps_dir=tmp_path)
    with pytest.raises(
        ConfigError, match=rf"1 trials \+ --trials {MAX_TRIALS:,} makes {MAX_TRIALS + 1:,}:"
    ):
        add_trials(s, MAX_TRIALS)


def test_cli_grid_seeds_cap(tmp_path: Path, capsys) -> None:
    argv = [
        "sweep",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--grid",
        "train.lr=0.1",
        "--seeds",
        "1000000000",
        "--sweeps-dir",
        str(tmp_path / "s"),
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "mlplab: error: a sweep queues at most 100,000 trials; 1 × 1,000,000,000 (--grid values "
        "× --seeds) makes 1,000,000,000: use fewer values or seeds (or split it into several "
        "sweeps)\n"
    )


def test_report_command_names_a_foreign_storage(base: Config, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    s = create_sweep(base, grid=["model.head=logits"], storage=url, sweeps_dir=tmp_path / "s")
    # the folder's sweep.json alone no longer opens shared.db: the printed command names it
    assert s.report_command() == f"mlplab sweep report {s.path} --storage '{url}'"
    with pytest.raises(ConfigError, match=r"pass it with --storage URL"):
        open_sweep(s.path, join=False)
    assert open_sweep(s.path, storage=url, join=False).counts() == {"waiting": 1}
    own = create_sweep(base, grid=["model.head=logits"], sweeps_dir=tmp_path / "s")
    assert own.report_command() == f"mlplab sweep report {own.path}"
