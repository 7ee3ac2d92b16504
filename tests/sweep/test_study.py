"""Where a sweep's study is stored: URLs with their password hidden, one-line errors for a
bad URL, the folder's own study.db (the only storage a sweep.json may name), the claim lock,
the sampler and pruner. (A planted or linked storage: tests/hostile/test_hostile_sweep.py.)"""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from mlplab import ConfigError, RunError
from mlplab.sweep.study import (
    STUDY_DB,
    folder_storage,
    is_folder_storage,
    make_pruner,
    make_sampler,
    mask_url,
    open_storage,
    own_storage,
    sqlite_lock,
)


def test_passwords_are_hidden() -> None:
    assert mask_url("postgresql://me:secret@db.example:5432/sweeps") == (
        "postgresql://me:***@db.example:5432/sweeps"
    )
    assert mask_url("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
    assert mask_url("not a url") == "not a url"


def test_a_bad_url_is_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        open_storage("foo")
    assert str(info.value) == (
        "--storage 'foo' is not a database URL; use e.g. postgresql://user@host:5432/db or "
        "sqlite:///path/study.db"
    )


def test_the_folders_own_study_db(tmp_path: Path) -> None:
    url = own_storage(tmp_path)
    assert url == f"sqlite:///{(tmp_path / STUDY_DB).resolve()}" and is_folder_storage(
        url, tmp_path
    )
    assert not is_folder_storage(f"sqlite:///{tmp_path / 'other.db'}", tmp_path)
    info = tmp_path / "sweep.json"
    with pytest.raises(RunError, match=r"the sweep's study study.db is missing"):
        folder_storage(tmp_path, info, STUDY_DB)
    optuna.create_study(storage=url, study_name="s")
    assert folder_storage(tmp_path, info, STUDY_DB) == url
    assert folder_storage(tmp_path, info, url) == url  # as an older sweep.json records it
    with pytest.raises(ConfigError, match=r"records the storage sqlite:///elsewhere.db, not the"):
        folder_storage(tmp_path, info, "sqlite:///elsewhere.db")


def test_the_claim_lock_sits_beside_a_sqlite_study(tmp_path: Path) -> None:
    with sqlite_lock(own_storage(tmp_path)):
        assert (tmp_path / "study.db.lock").is_file()
    with sqlite_lock("postgresql://me@db.example/sweeps"):  # the server's row locks suffice
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["study.db.lock"]


def test_sampler_and_pruner() -> None:
    assert isinstance(make_sampler("random", 1), optuna.samplers.RandomSampler)
    assert isinstance(make_sampler("tpe", None), optuna.samplers.TPESampler)
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)
    median = make_pruner("median", 3)
    assert isinstance(median, optuna.pruners.MedianPruner) and median._n_warmup_steps == 3
