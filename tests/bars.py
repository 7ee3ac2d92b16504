"""A tiny dataset shaped like MNIST for the rejection's tests: light bars on a dark 12x12
frame, one place per class (4 classes), seeded."""

from __future__ import annotations

import torch

from mlplab import Dataset, Split

SHAPE = (1, 12, 12)


def bars_split(n: int, g: torch.Generator) -> Split:
    """``n`` images: light bars on a dark frame, one place per class, as MNIST's digits are."""
    labels = torch.randint(0, 4, (n,), generator=g)
    images = torch.randint(0, 12, (n, *SHAPE), generator=g)
    for c in range(4):
        images[labels == c, :, 2 + 2 * c : 4 + 2 * c, 2:10] += 200
    return Split(images.clamp(0, 255).to(torch.uint8), labels)


def bars_dataset() -> Dataset:
    """600 training and 200 test images, seed 0."""
    g = torch.Generator().manual_seed(0)
    return Dataset(
        "bars", bars_split(600, g), bars_split(200, g), ("a", "b", "c", "d"), "generated"
    )
