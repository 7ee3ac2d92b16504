"""CPU threads for a training call: the automatic choice from a step's work, and the order
of the settings (train.threads, MLPLAB_THREADS, a resumed run's count, the automatic one)."""

from __future__ import annotations

import pytest
import torch

from mlplab import Config, train
from mlplab.errors import ConfigError
from mlplab.training import threads
from mlplab.training.threads import auto_threads, env_threads, set_threads, step_flops


def test_automatic_threads_follow_the_work_and_leave_busy_cores_alone() -> None:
    tutorial = step_flops(784, [250, 100], 10, 64)
    assert tutorial == 2 * 64 * (2 * (784 * 250 + 250 * 100 + 100 * 10) + 250 * 100 + 100 * 10)
    assert auto_threads(tutorial, 2) == 2  # 1.3x on an idle 2-core machine
    assert auto_threads(tutorial, 2, busy=0.9) == 1  # 3-5x slower beside a busy process
    assert auto_threads(tutorial, 16, busy=0.3) == 2  # small steps: few threads pay
    assert auto_threads(step_flops(784, [250, 100], 10, 16), 16) == 1
    assert auto_threads(step_flops(784, [250, 100], 10, 4096), 2) == 2  # capped by the cores
    assert auto_threads(step_flops(784, [250, 100], 10, 4096), 16, busy=15.2) == 1


def test_default_threads_are_chosen_and_recorded(tiny, quick_config, monkeypatch) -> None:
    monkeypatch.delenv("MLPLAB_THREADS")
    torch.set_num_threads(2)
    try:
        result = train(quick_config, dataset=tiny)  # a tiny step: one thread
        assert result.summary["threads"] == 1 and torch.get_num_threads() == 2
        monkeypatch.setenv("MLPLAB_THREADS", "2")
        assert train(quick_config, dataset=tiny).summary["threads"] == 2
    finally:
        torch.set_num_threads(1)


@pytest.mark.parametrize(
    "configured, env, resumed, device, expected",
    [
        (3, "2", 4, "cpu", 3),  # train.threads wins over everything
        (0, "2", 4, "cpu", 2),  # then MLPLAB_THREADS
        (0, None, 4, "cpu", 4),  # then the count a resumed run recorded
        (0, None, None, "cpu", 5),  # then the automatic choice
        (0, None, 4, "meta", 7),  # off the CPU: the caller's count stays
    ],
)
def test_the_settings_take_turns(
    tiny, monkeypatch, configured, env, resumed, device, expected
) -> None:
    if env is None:
        monkeypatch.delenv("MLPLAB_THREADS")
    else:
        monkeypatch.setenv("MLPLAB_THREADS", env)
    monkeypatch.setattr(threads, "auto_threads", lambda *args: 5)
    config = Config().override({"train.threads": configured})
    caller = torch.get_num_threads()
    try:
        torch.set_num_threads(7)
        set_threads(config, tiny, torch.device(device), resumed)
        assert torch.get_num_threads() == expected
    finally:
        torch.set_num_threads(caller)


@pytest.mark.parametrize("value", ["0", "x", "513", "-1", "1.5"])
def test_a_bad_environment_count_is_one_clear_error(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        env_threads(value)
    assert str(info.value).startswith(
        "environment variable MLPLAB_THREADS must be a whole number in [1, 512]; got "
    )
    assert str(info.value).endswith(" (unset it for the automatic choice)")
    assert env_threads("3") == 3
