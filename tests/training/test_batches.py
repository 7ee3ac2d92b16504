"""Device batches: every sample once per epoch in a seeded order, normalized; evaluation in
the split's own order; augmentation drawn from the same generator."""

from __future__ import annotations

import torch

from mlplab import Normalization, Split
from mlplab.training.augment import Augmentation
from mlplab.training.batches import iterate_batches


def test_every_sample_once_per_epoch_and_normalized() -> None:
    n = 1000
    images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8)
    split = Split(images, torch.arange(n))
    norm = Normalization.fit(images)
    scale, offset = norm.affine()
    seen = []
    for x, y in iterate_batches(
        split, 64, scale, offset, generator=torch.Generator().manual_seed(0)
    ):
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 4, 4) and len(x) <= 64
        expected = (images[y].double() / 255 - norm.mean[0]) / norm.std[0]
        torch.testing.assert_close(x.double(), expected, atol=1e-5, rtol=0)
        seen.append(y)
    order = torch.cat(seen)
    assert sorted(order.tolist()) == list(range(n)) and order.tolist() != list(range(n))


def test_evaluation_order_and_max_batches() -> None:
    split = Split(torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10))
    scale, offset = Normalization.fit(split.images, "none").affine()
    labels = [y.tolist() for _, y in iterate_batches(split, 4, scale, offset)]
    assert labels == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert len(list(iterate_batches(split, 4, scale, offset, max_batches=2))) == 2


def test_augmented_batches_are_seeded() -> None:
    images = torch.randint(0, 256, (300, 1, 8, 8), generator=torch.Generator().manual_seed(0))
    split = Split(images.to(torch.uint8), torch.arange(300))
    scale, offset = Normalization.fit(split.images).affine()

    def epoch(seed: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed)
        return torch.cat(
            [
                x
                for x, _ in iterate_batches(
                    split, 32, scale, offset, generator=g, augmentation=Augmentation(5.0, 1)
                )
            ]
        )

    assert torch.equal(epoch(0), epoch(0)) and not torch.equal(epoch(0), epoch(1))


def test_normalization_is_the_broadcast_fused_multiply_add_bit_for_bit() -> None:
    """The full-size offset (the vectorized path) gives exactly addcmul with broadcast scale and
    offset: every pixel value, several channels, a batch that ends in a partial one."""
    n, shape = 70, (3, 5, 9)  # 5 x 9 pixels: the element count is no multiple of a vector
    images = torch.randint(0, 256, (n, *shape), dtype=torch.uint8)
    images[:2].view(-1)[:256] = torch.arange(256, dtype=torch.uint8)  # every value, once
    split = Split(images, torch.arange(n))
    scale, offset = Normalization.fit(images).affine()
    batches = list(iterate_batches(split, 32, scale, offset))
    assert [len(y) for _, y in batches] == [32, 32, 6]
    for x, y in batches:
        assert torch.equal(x, torch.addcmul(offset, images[y].float(), scale))
