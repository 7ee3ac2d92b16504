"""Synthetic non-digits: every kind at any shape, deterministic, and drawn as preprocessed
inputs are (light marks on a dark frame, inside the middle 20/28); the photographed kinds
through predict's own pixel steps, and never the letters the predict tests measure."""

from __future__ import annotations

import pytest
import torch

from mlplab.inference import images as images_module
from mlplab.trust import negatives as negatives_module
from mlplab.trust.negatives import FAMILIES, KINDS, PHOTO_KINDS, PHOTO_LETTERS, negatives


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


# ----- photographed: drawn as photos, then put through predict's pixel steps ----------------
@pytest.mark.parametrize("kind", PHOTO_KINDS)
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 8, 12), (1, 16, 20)])
def test_every_photographed_kind_at_any_shape_is_deterministic(
    kind: str, shape: tuple[int, ...]
) -> None:
    images = negatives(kind, 4, shape, seed=3)
    assert images.shape == (4, *shape) and images.dtype == torch.uint8
    assert torch.equal(images, negatives(kind, 4, shape, seed=3))
    assert not torch.equal(images, negatives(kind, 4, shape, seed=4))


def test_the_images_given_are_copies_of_what_is_kept() -> None:
    first = negatives("photo-glyphs", 3, (1, 28, 28), seed=5)
    first[:] = 0  # the fit's caller may write over them: the next call draws the same again
    assert negatives("photo-glyphs", 3, (1, 28, 28), seed=5).flatten(1).amax(1).min() > 100


@pytest.mark.parametrize("kind", PHOTO_KINDS)
def test_photographed_kinds_look_preprocessed(kind: str) -> None:
    """As predict makes them: the page's light and noise gone (black around the ink), the ink
    within 20x20 give or take the antialiasing, its centre of mass at (14, 14)."""
    images = negatives(kind, 24, (1, 28, 28), seed=2)[:, 0].double()
    inked = images.flatten(1).amax(1) > 0
    # paper with only a faint shadow or fold may be blank (an empty frame): not every one
    assert inked.all() if kind != "photo-paper" else inked.sum() >= 12, kind
    rows = torch.arange(28, dtype=torch.float64)
    drawn = images[inked]
    mass = drawn.sum((1, 2))
    center = torch.stack(
        [(drawn.sum(2) * rows).sum(1) / mass, (drawn.sum(1) * rows).sum(1) / mass], 1
    )
    off = (center - 14).abs()
    # placed by mass at (14, 14); a drawing whose mass sits at one end of it may lose its far
    # end past the frame's edge, which moves its centre (predict does the same)
    assert off.median() < 0.3 and off.max() < 2.5, (kind, center)
    for image in drawn:
        ys, xs = torch.nonzero(image > 0, as_tuple=True)
        assert ys.max() - ys.min() <= 24 and xs.max() - xs.min() <= 24, kind
        assert (image == 0).double().mean() > 0.4, kind  # no paper, no noise left
    if kind != "photo-paper":
        assert images.amax((1, 2)).min() > 100, kind  # full-contrast ink, as MNIST's
    edge = torch.cat([images[:, :2].flatten(1), images[:, :, :2].flatten(1)], 1)
    assert edge.mean() < 10, kind  # the marks stay off the frame's edge, mostly


def test_photographed_kinds_go_through_predicts_own_pixel_steps() -> None:
    assert negatives_module.mnist_style is images_module.mnist_style


def test_photographed_letters_are_not_the_ones_the_predict_tests_measure() -> None:
    # tests/inference/test_predictor.py photographs these capitals: they measure, never choose
    assert not set(PHOTO_LETTERS) & set("AMNVYKWHRX")
    assert FAMILIES == {"in-frame": KINDS, "photographed": PHOTO_KINDS}
