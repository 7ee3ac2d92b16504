"""Synthetic non-digits: every kind at any shape, deterministic, and drawn as preprocessed
inputs are (light marks on a dark frame, inside the middle 20/28)."""

from __future__ import annotations

import pytest
import torch

from mlplab.trust.negatives import KINDS, negatives


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 12)])
def test_every_kind_at_any_shape_is_deterministic(kind: str, shape: tuple[int, ...]) -> None:
    images = negatives(kind, 5, shape, seed=3)
    assert images.shape == (5, *shape) and images.dtype == torch.uint8
    assert torch.equal(images, negatives(kind, 5, shape, seed=3))
    if kind not in ("blank", "gradient"):  # one of the same kind, drawn again, differs
        assert not torch.equal(images, negatives(kind, 5, shape, seed=4))


def test_what_each_kind_looks_like() -> None:
    shape = (1, 28, 28)
    assert not negatives("blank", 3, shape).any()
    noise = negatives("noise", 50, shape).float()
    assert noise.mean() == pytest.approx(127.5, abs=3) and noise.std() > 70
    ramp = negatives("gradient", 20, shape).float()
    steps = (ramp[..., 1:, :] - ramp[..., :-1, :]).abs().amax()
    assert steps < 20 and (ramp.flatten(1).amax(1) - ramp.flatten(1).amin(1)).max() > 50
    for kind in ("strokes", "shapes", "textures", "glyphs"):
        drawn = negatives(kind, 30, shape)
        assert drawn.flatten(1).amax(1).min() > 100, kind  # every one has ink
        edge = torch.cat([drawn[..., :2, :].flatten(1), drawn[..., :, :2].flatten(1)], 1)
        assert edge.float().mean() < 10, kind  # the marks stay off the frame's edge


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^kind must be one of noise, blank, .*; got 'fog'$"):
        negatives("fog", 1, (1, 8, 8))
