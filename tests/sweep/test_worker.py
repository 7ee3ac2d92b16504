"""A sweep's worker: pruning, a diverging setting failing alone, Ctrl-C queueing the trial
again (before and after an epoch), the scores as the sweep shows them."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

import mlplab
from mlplab import Config
from mlplab.sweep import create_sweep, open_sweep, run_sweep, sweep
from mlplab.sweep import worker as worker_module
from mlplab.sweep.worker import format_score

SPACE = {
    "train.lr": {"type": "float", "low": 1e-3, "high": 1e-1, "log": True},
    "model.hidden": {"type": "categorical", "choices": ["16", "32,16"]},
}


def finished_states(s) -> list[str]:
    return [t.state.name for t in s.trials()]


def test_pruned_trials_stop_early(base: Config, digits, tmp_path: Path, monkeypatch) -> None:
    class Always(optuna.pruners.BasePruner):
        def prune(self, study, trial) -> bool:
            return True

    monkeypatch.setattr(worker_module, "make_pruner", lambda name, warmup: Always())
    s = sweep(
        base.override({"train.epochs": 3}),
        space=SPACE,
        trials=2,
        sweeps_dir=tmp_path,
        dataset=digits,
    )
    for t in s.trials():
        assert t.state.name == "PRUNED" and t.user_attrs["epochs_run"] == 1
        assert list(t.intermediate_values) == [1]
        assert len(mlplab.Run(Path(t.user_attrs["run_dir"])).metrics()) == 1


def test_grid_with_seeds_and_a_diverging_setting(base: Config, digits, tmp_path: Path) -> None:
    """Every setting × seed runs once; a diverged trial is marked failed and the rest go on."""
    base = base.override({"train.optimizer": "sgd"})
    s = sweep(base, grid=["train.lr=0.01,1e12"], seeds=2, sweeps_dir=tmp_path, dataset=digits)
    trials = s.trials()
    assert [t.params for t in trials] == [
        {"train.lr": lr, "train.seed": seed} for lr in (0.01, 1e12) for seed in (0, 1)
    ]
    assert finished_states(s) == ["COMPLETE", "COMPLETE", "FAIL", "FAIL"]
    assert trials[2].user_attrs["error"].startswith("training diverged: the train loss became")
    assert [mlplab.Run(Path(t.user_attrs["run_dir"])).config().train.seed for t in trials[:2]] == [
        0,
        1,
    ]


def test_ctrl_c_queues_the_trial_again(base: Config, digits, tmp_path: Path, monkeypatch) -> None:
    s = create_sweep(base, grid=["model.head=logits,softmax"], sweeps_dir=tmp_path)
    calls = []
    real_train = worker_module.train

    def interrupted_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(*args, **kwargs)

    monkeypatch.setattr(worker_module, "train", interrupted_once)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, dataset=digits)
    assert finished_states(s) == ["COMPLETE", "FAIL", "WAITING"]
    assert s.trials()[1].user_attrs["error"] == "stopped: KeyboardInterrupt; queued again"
    assert s.trials()[2].params == {} and s.trials()[2].user_attrs == {"retry_of": 1}
    run_sweep(open_sweep(s.path), dataset=digits)  # another worker (or this one) finishes it
    heads = [t.params["model.head"] for t in s.trials() if t.state.name == "COMPLETE"]
    assert heads == ["logits", "softmax"]


def test_ctrl_c_after_an_epoch_keeps_the_run_and_requeues(
    base: Config, digits, tmp_path: Path, monkeypatch
) -> None:
    real_train = worker_module.train

    def stopped_after_one_epoch(config, dataset=None, on_epoch=None, **kwargs):
        def hook(epoch):
            raise KeyboardInterrupt  # what Ctrl-C during the next epoch amounts to

        return real_train(config, dataset=dataset, on_epoch=hook, **kwargs)

    s = create_sweep(base, grid=["model.head=logits"], sweeps_dir=tmp_path)
    monkeypatch.setattr(worker_module, "train", stopped_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(s, dataset=digits)
    first, retry = s.trials()
    assert (first.state.name, retry.state.name) == ("FAIL", "WAITING")
    assert first.user_attrs["error"] == "stopped: interrupted; queued again"
    assert mlplab.Run(Path(first.user_attrs["run_dir"])).summary()["interrupted"] is True


def test_a_grid_is_never_pruned(base: Config, digits, tmp_path: Path, monkeypatch) -> None:
    """Pruning is for a search: a grid runs every setting to its last epoch."""
    made = []

    def pruner(name: str, warmup: int):
        made.append(name)
        return optuna.pruners.NopPruner()

    monkeypatch.setattr(worker_module, "make_pruner", pruner)
    s = sweep(base, grid=["model.head=logits"], sweeps_dir=tmp_path, dataset=digits)
    assert made == ["none"] and finished_states(s) == ["COMPLETE"]


@pytest.mark.parametrize(
    "value, regression, shown",
    [
        (0.97531, False, "97.53%"),
        (0.97531, True, "0.9753"),
        (None, False, "-"),
        (float("nan"), True, "-"),
    ],
)
def test_scores_as_the_sweep_shows_them(value, regression: bool, shown: str) -> None:
    assert format_score(value, regression) == shown
