"""data.mnist_style: predict's pixel steps as a pure function (the steps themselves are tested
through preprocess in tests/inference/test_images.py): the same frame as preprocess gives,
blank paper under uneven light an empty frame, and the frame's centre of mass at its centre."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from mlplab.data.mnist_style import BOX, is_blank, mnist_style
from mlplab.inference import images
from mlplab.inference.images import preprocess


def test_preprocess_is_this_function_on_the_gray_image() -> None:
    image = Image.new("L", (180, 140), 226)
    ImageDraw.Draw(image).line([(30, 100), (90, 20), (150, 110)], fill=30, width=5)
    frame = mnist_style(np.asarray(image, dtype=np.float64), 28, 28)
    assert frame.dtype == np.uint8 and frame.shape == (28, 28) and frame.max() == 255
    np.testing.assert_array_equal(preprocess(image, (1, 28, 28), "mnist")[0], frame)
    assert images.mnist_style is mnist_style and images.is_blank is is_blank and images.BOX == BOX
    rows = np.arange(28)
    mass = frame.sum()
    assert abs((frame.sum(1) * rows).sum() / mass - 14) < 0.3
    assert abs((frame.sum(0) * rows).sum() / mass - 14) < 0.3


def test_blank_paper_under_uneven_light_is_an_empty_frame() -> None:
    y, x = np.mgrid[0:150, 0:200] / 150
    paper = 200 + 30 * x - 25 * (x - 0.6) ** 2 - 20 * y * y  # a lamp's light, no ink
    assert is_blank(paper)
    assert not mnist_style(paper, 28, 28).any()
    paper[60:64, 40:160] -= 80  # a pen line
    assert not is_blank(paper) and mnist_style(paper, 28, 28).max() > 200  # ink, after resizing
