"""Synthetic datasets of any image shape and number of classes, and a seconds-long config."""

from __future__ import annotations

import torch

from mlplab import Config, Dataset, Split


def make_images(classes: int = 3, channels: int = 3, height: int = 6, width: int = 10,
                n_train: int = 300, n_test: int = 90, seed: int = 0) -> Dataset:  # fmt: skip
    """Learnable images of any shape: each class is a fixed random template plus noise;
    every class occurs in both splits (when n >= classes)."""
    g = torch.Generator().manual_seed(seed)
    templates = torch.randint(0, 256, (classes, channels, height, width), generator=g)

    def split(n: int) -> Split:
        labels = (torch.arange(n) % classes)[torch.randperm(n, generator=g)]
        noise = torch.randint(-40, 41, (n, channels, height, width), generator=g)
        images = (templates[labels] * 0.7 + noise + 30).clamp(0, 255).to(torch.uint8)
        return Split(images, labels)

    names = tuple(f"k{i}" for i in range(classes))
    return Dataset("shapes", split(n_train), split(n_test), names, "generated")


def quick(tmp_path, **overrides) -> Config:
    settings = {"model.hidden": [16], "train.epochs": 3, "train.batch_size": 32,
                "train.lr": 0.01, "train.eval_batch_size": 50, "train.threads": 1,
                "run.dir": str(tmp_path / "runs"), "run.name": "t"}  # fmt: skip
    return Config().override({**settings, **overrides})
