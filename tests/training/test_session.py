"""The set-up of a training call and its step, shared by train and lr_find: the session is
built from the config alone (the same config, the same weights, splits and batches), the
step is plain torch's, and lr_find takes train's very step on the very same batch."""

from __future__ import annotations

import copy
import sys

import pytest
import torch
import torch.nn.functional as F

from mlplab import Config, Normalization, train
from mlplab.data.splits import configured_splits
from mlplab.training.batches import iterate_batches
from mlplab.training.lr_find import lr_find
from mlplab.training.optim import set_step
from mlplab.training.session import (
    DRY_RUN_BATCHES,
    DRY_RUN_EPOCHS,
    aligns_once,
    build_session,
    seed_streams,
    training_step,
)

CPU = torch.device("cpu")


def test_weights_and_shuffling_draw_separate_streams() -> None:
    model_seed, data_seed = seed_streams(0)
    assert model_seed != data_seed and seed_streams(0) == (model_seed, data_seed)
    assert len({*seed_streams(0), *seed_streams(1)}) == 4
    assert all(0 <= s < 2**63 for s in seed_streams(2**63 - 1))


def test_the_session_is_the_configs_splits_normalization_and_seeded_model(
    tiny, quick_config: Config
) -> None:
    with torch.random.fork_rng():
        s = build_session(quick_config, tiny, CPU)
        again = build_session(quick_config, tiny, CPU)
        other = build_session(quick_config.override({"train.seed": 1}), tiny, CPU)
    train_split, val, test = configured_splits(tiny, quick_config.data)
    for name, split in (("train", train_split), ("val", val), ("test", test)):
        assert torch.equal(s.splits[name].images, split.images), name
    assert s.normalization == Normalization.fit(train_split.images)  # the training split's
    weights, same, seeded = (x.model.state_dict() for x in (s, again, other))
    assert all(torch.equal(weights[k], same[k]) for k in weights)
    assert not any(torch.equal(weights[k], seeded[k]) for k in weights if k.endswith("weight"))
    assert (s.plan.epochs, s.plan.steps_per_epoch) == (3, 15)  # ceil(461 / 32)
    assert s.max_batches is None and s.average is None and s.trained is None
    assert s.regression_loss is None and s.world.size == 1
    first = [y for _, y in s.batches()]
    assert torch.equal(torch.cat(first), torch.cat([y for _, y in again.batches()]))


def test_a_dry_run_session_plans_a_few_batches(tiny, quick_config: Config) -> None:
    with torch.random.fork_rng():
        s = build_session(quick_config.override({"train.dry_run": True}), tiny, CPU)
    assert s.max_batches == DRY_RUN_BATCHES
    assert (s.plan.epochs, s.plan.steps_per_epoch) == (DRY_RUN_EPOCHS, DRY_RUN_BATCHES)


def test_the_step_is_plain_torchs_forward_loss_backward_and_update(
    tiny, quick_config: Config
) -> None:
    config = quick_config.override({"train.optimizer": "sgd", "train.lr": 0.1})
    with torch.random.fork_rng():
        s = build_session(config, tiny, CPU)
    reference = copy.deepcopy(s.model)
    x, y = next(iter(s.batches(augmented=False)))
    set_step(s.optimizer, 0.1, None)
    loss, out = training_step(s)(x, y, len(y))
    expected = F.cross_entropy(reference(x), y)
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert out.shape == (len(y), len(tiny.classes))
    for (name, p), q in zip(s.model.named_parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q - 0.1 * q.grad, msg=name)


@pytest.mark.parametrize(
    ("overrides", "once"),
    [
        ({"model.deskew": True, "model.center": True}, True),
        ({"model.center": True}, True),
        ({"model.deskew": True, "augment.shift": 1}, False),  # a new image every epoch
        ({"model.deskew": True, "augment.rotation": 5.0}, False),
        ({}, False),  # nothing to align
    ],
    ids=["deskew-center", "center", "shifted", "rotated", "plain"],
)
def test_only_images_never_augmented_are_aligned_once(
    quick_config: Config, overrides, once: bool
) -> None:
    assert aligns_once(quick_config.override(overrides)) is once


def test_images_aligned_once_are_the_models_alignment_in_the_same_order(
    tiny, quick_config: Config
) -> None:
    """The training split aligned once (inside the first epoch, for the kept pixels only)
    is the model's own alignment of each normalized batch, cropped, and the batches come in
    the order, and with the labels, of the per-batch path."""
    config = quick_config.override({"model.deskew": True, "model.center": True, "model.crop": 1})
    with torch.random.fork_rng():
        s = build_session(config, tiny, CPU)
        plain = build_session(quick_config, tiny, CPU)  # the same batches, not aligned
    assert s.aligned is None  # not made before training asks for it
    aligned = s.aligned_train()
    assert s.aligned_train() is aligned and aligned.images.dtype == torch.float32
    scale, offset = s.affine()
    normalized = torch.cat([x for x, _ in iterate_batches(s.splits["train"], 64, scale, offset)])
    want = s.model.cropped(s.model.align(normalized))
    assert aligned.images.shape == (len(normalized), 1, 6, 6)  # 8x8 less 1 each side
    torch.testing.assert_close(aligned.images, want, rtol=0, atol=1e-5)
    assert not torch.allclose(want, s.model.cropped(normalized), atol=0.1)  # the ink moved
    batches, per_batch = list(s.batches()), list(plain.batches())
    assert len(batches) == len(per_batch) == s.plan.steps_per_epoch
    for (x, y), (raw, labels) in zip(batches, per_batch, strict=True):
        assert torch.equal(y, labels)
        torch.testing.assert_close(x, s.model.cropped(s.model.align(raw)), rtol=0, atol=1e-5)


def test_training_on_images_aligned_once_is_training_with_the_models_alignment(
    tiny, quick_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Aligned once (and so the written-out step) or by the model in every batch (autograd's
    step): the same run, to rounding."""
    config = quick_config.override({"model.deskew": True, "model.center": True})
    once = train(config.override({"run.name": "once"}), dataset=tiny, progress=False)
    monkeypatch.setattr(sys.modules["mlplab.training.session"], "aligns_once", lambda c: False)
    every = train(config.override({"run.name": "every"}), dataset=tiny, progress=False)
    for a, b in zip(once.history, every.history, strict=True):
        for key in ("train_loss", "val_loss"):
            assert a[key] == pytest.approx(b[key], rel=1e-4), key
        assert a["val_accuracy"] == pytest.approx(b["val_accuracy"], abs=0.01)


def _record_steps(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[tuple]]:
    """Each step train and lr_find take: (inputs, targets, loss), by caller."""
    session = sys.modules["mlplab.training.session"]
    seen: dict[str, list[tuple]] = {"train": [], "lr_find": []}
    for caller, module in (
        ("train", "mlplab.training.loop"),
        ("lr_find", "mlplab.training.lr_find"),
    ):

        def recording(s, _caller=caller):
            step = session.training_step(s)

            def recorded(x, y, batch):
                loss, out = step(x, y, batch)
                seen[_caller].append((x.clone(), y.clone(), loss.item()))
                return loss, out

            return recorded

        monkeypatch.setattr(sys.modules[module], "training_step", recording)
    return seen


def test_lr_find_takes_trains_step_on_the_same_batch_in_the_runs_precision(
    tiny, quick_config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first step of each (its loss comes before any update, so the rates do not
    matter): the same augmented batch, and the same loss, bit for bit, in fp32 and under
    bf16 autocast, with label smoothing and the L1 term on."""
    recipe = {
        "augment.rotation": 10.0,
        "augment.shift": 1,
        "train.label_smoothing": 0.1,
        "train.l1": 1e-4,
        "model.dropout": 0.1,
        "train.epochs": 1,
    }
    first = {}
    for precision in ("fp32", "bf16"):
        seen = _record_steps(monkeypatch)
        config = quick_config.override({**recipe, "train.precision": precision})
        train(config, dataset=tiny)
        lr_find(config, dataset=tiny, steps=10)
        (x, y, loss), (x_found, y_found, loss_found) = seen["train"][0], seen["lr_find"][0]
        assert torch.equal(x, x_found) and torch.equal(y, y_found), precision
        assert loss == loss_found, precision
        first[precision] = loss
    assert first["fp32"] != first["bf16"]  # the precision reached both steps
