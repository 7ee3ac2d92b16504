"""Figures draw from numbers alone and return matplotlib Figures (no pyplot, no display)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mlplab import MLP
from mlplab.analysis import figures as F
from mlplab.analysis import first_layer
from mlplab.errors import ConfigError


def test_first_layer_rgb_and_per_channel() -> None:
    torch.manual_seed(0)
    first = first_layer(MLP((3, 6, 10), [12], 3), n=4)
    rgb = F.first_layer_figure(first)
    channels = F.first_layer_figure(first, mode="channels")
    assert len([ax for ax in rgb.axes if ax.images]) == 4
    assert len([ax for ax in channels.axes if ax.images]) == 12  # 4 units x 3 channels
    shown = next(ax for ax in rgb.axes if ax.images).images[0].get_array()
    assert shown.shape == (6, 10, 3) and shown.min() >= 0 and shown.max() <= 1  # per-unit min-max
    with pytest.raises(ConfigError, match="must be one of auto, rgb, channels; got 'hsv'"):
        F.first_layer_figure(first, mode="hsv")


def test_png_bytes_and_atomic_file(tmp_path) -> None:
    figure = F.intensity_figure(np.ones((1, 256), dtype=np.int64))
    data = F.save_png(figure, tmp_path / "i.png")
    assert data.startswith(b"\x89PNG") and (tmp_path / "i.png").read_bytes() == data
    assert type(figure).__module__ == "matplotlib.figure"
