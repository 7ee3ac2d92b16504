"""The analysis numbers, against hand-worked examples, numpy, scikit-learn and plain torch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from synthetic import make_images, quick

from mlplab import MLP, Normalization, train
from mlplab.analysis import (
    channel_statistics,
    class_counts,
    class_means,
    confusion,
    curves,
    embed,
    embed_layers,
    first_layer,
    gradient_ascent,
    intensity_histogram,
    layer_weights,
    most_confident_mistakes,
    most_confused,
    pairwise_correlations,
    predict_split,
    random_search,
    sample_predictions,
    samples_per_class,
)
from mlplab.analysis.predictions import Predictions
from mlplab.errors import ConfigError
from mlplab.training.metrics import evaluate_split


def fake_predictions(labels, probabilities, classes=None) -> Predictions:
    p = np.asarray(probabilities, dtype=np.float32)
    n, k = p.shape
    return Predictions(
        images=np.zeros((n, 1, 2, 2), np.uint8),
        labels=np.asarray(labels),
        predicted=p.argmax(1),
        probabilities=p,
        log_probabilities=np.log(p.clip(1e-12)),
        logits=np.log(p.clip(1e-12)),
        hidden=None,
        loss=0.0,
        classes=classes or tuple(str(i) for i in range(k)),
    )


# ----- confusion ------------------------------------------------------------------------
def test_confusion_hand_worked() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 2])
    predicted = np.array([0, 1, 0, 1, 1, 2, 0, 1, 2, 1])
    c = confusion(labels, predicted, ("a", "b", "c"))
    # rows: true a -> a a b; true b -> b b; true c -> c a b c b
    np.testing.assert_array_equal(c.counts, [[2, 1, 0], [0, 2, 0], [1, 2, 2]])
    np.testing.assert_allclose(c.normalized, [[2 / 3, 1 / 3, 0], [0, 1, 0], [0.2, 0.4, 0.4]])
    np.testing.assert_allclose(c.precision, [2 / 3, 2 / 5, 1])
    np.testing.assert_allclose(c.recall, [2 / 3, 1, 2 / 5])
    np.testing.assert_allclose(c.f1, [2 / 3, 4 / 7, 4 / 7])
    np.testing.assert_array_equal(c.support, [3, 2, 5])
    assert c.accuracy == 0.6 and c.samples == 10
    assert c.per_class()[1] == {
        "class": "b",
        "precision": 0.4,
        "recall": 1.0,
        "f1": pytest.approx(4 / 7),
        "support": 2,
    }


def test_most_confused_ranked_by_count_then_class_order() -> None:
    counts = np.array([[2, 1, 0], [0, 2, 0], [1, 2, 2]])
    pairs = most_confused(counts, ("a", "b", "c"))
    assert [(p["true"], p["predicted"], p["count"]) for p in pairs] == [
        ("c", "b", 2),
        ("a", "b", 1),
        ("c", "a", 1),
    ]
    assert pairs[0]["fraction"] == pytest.approx(2 / 5)
    assert [p["true_index"] for p in most_confused(counts, ("a", "b", "c"), top=1)] == [2]
    assert most_confused(np.diag([3, 4]), ("a", "b")) == []  # no mistakes, no pairs


def test_absent_classes_give_zero_rows_without_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = confusion(np.array([0, 0, 1]), np.array([0, 1, 1]), ("a", "b", "never"))
    np.testing.assert_array_equal(c.counts[2], [0, 0, 0])
    assert c.precision[2] == 0 and c.recall[2] == 0 and c.support[2] == 0
    np.testing.assert_array_equal(c.normalized[2], [0, 0, 0])


# ----- predictions ----------------------------------------------------------------------
@pytest.mark.parametrize("head", ["logits", "log_softmax", "softmax"])
def test_predictions_match_evaluate_split(head: str) -> None:
    data = make_images(classes=4, channels=3, height=5, width=7)
    torch.manual_seed(0)
    model = MLP(data.image_shape, [12, 8], 4, head=head).eval()
    norm = Normalization.fit(data.train.images)
    p = predict_split(model, data.test, norm, data.classes, batch_size=32)
    scores = evaluate_split(model, data.test, *norm.affine(), batch_size=32)
    assert p.accuracy == scores.accuracy
    assert p.loss == pytest.approx(scores.loss, rel=1e-6)
    np.testing.assert_allclose(p.probabilities.sum(1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.exp(p.log_probabilities), p.probabilities, rtol=1e-4, atol=1e-7)
    x = data.test.images.float() * norm.affine()[0] + norm.affine()[1]
    with torch.no_grad():
        logits = model.output(model.hidden(x.flatten(1)))
        hidden = model.hidden(x.flatten(1))
    np.testing.assert_allclose(p.logits, logits.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.hidden, hidden.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(p.probabilities, torch.softmax(logits, 1).numpy(), atol=1e-6)
    assert p.hidden.shape == (90, 8) and p.images.shape == (90, 3, 5, 7)


def test_with_test_time_views_the_logits_are_the_averaged_predictions() -> None:
    data = make_images(classes=4, channels=3, height=6, width=6)
    torch.manual_seed(0)
    model = MLP(data.image_shape, [12], 4, tta=["shift", "flip"]).eval()
    norm = Normalization.fit(data.train.images)
    p = predict_split(model, data.test, norm, data.classes, batch_size=32)
    scores = evaluate_split(model, data.test, *norm.affine(), batch_size=32)
    assert p.accuracy == scores.accuracy and p.loss == pytest.approx(scores.loss, rel=1e-6)
    assert (p.logits.argmax(1) == p.predicted).all()
    np.testing.assert_allclose(p.logits, p.log_probabilities, rtol=1e-6)
    x = data.test.images.float() * norm.affine()[0] + norm.affine()[1]
    with torch.no_grad():  # the hidden layer is the image's own
        np.testing.assert_allclose(
            p.hidden, model.hidden(x.flatten(1)).numpy(), rtol=1e-5, atol=1e-6
        )


@pytest.mark.parametrize("tta", [[], ["shift", "flip"]])
def test_predictions_with_a_temperature_show_the_calibrated_probabilities(tta: list) -> None:
    data = make_images(classes=4, channels=1, height=6, width=6)
    torch.manual_seed(0)
    model = MLP(data.image_shape, [12], 4, tta=tta).eval()
    norm = Normalization.fit(data.train.images)
    own = predict_split(model, data.test, norm, data.classes, batch_size=32)
    calibrated = predict_split(model, data.test, norm, data.classes, batch_size=32, temperature=2.5)
    # the model's own figures do not move: classes, logits, loss
    np.testing.assert_array_equal(calibrated.predicted, own.predicted)
    np.testing.assert_array_equal(calibrated.logits, own.logits)
    assert calibrated.loss == own.loss and calibrated.accuracy == own.accuracy
    # the probabilities shown are softmax(logits / T)
    expected = torch.softmax(torch.from_numpy(own.logits).double() / 2.5, 1).numpy()
    np.testing.assert_allclose(calibrated.probabilities, expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(calibrated.log_probabilities, np.log(expected), rtol=1e-5, atol=1e-6)
    assert (calibrated.confidence < own.confidence).all()  # T > 1 softens every prediction


def test_logistic_regression_has_no_hidden_layer() -> None:
    data = make_images(classes=2, channels=1, height=4, width=6)
    model = MLP(data.image_shape, [], 2).eval()
    p = predict_split(model, data.test, Normalization.fit(data.train.images), data.classes)
    assert p.hidden is None and p.logits.shape == (90, 2)
    maps = embed_layers(p, "pca")
    assert maps["hidden"].empty and "logistic regression" in maps["hidden"].note
    assert maps["logits"].points.shape == (90, 2)


# ----- mistakes -------------------------------------------------------------------------
def test_most_confident_mistakes_order() -> None:
    p = fake_predictions(
        [0, 1, 0, 1, 1],
        [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.95, 0.05], [0.2, 0.8]],
    )  # mistakes: index 1 (0.8 sure of 0), 2 (0.7 sure of 1), 3 (0.95 sure of 0)
    picked = most_confident_mistakes(p, 2)
    assert picked.indices.tolist() == [3, 1]
    np.testing.assert_allclose(picked.predicted_probability, [0.95, 0.8])
    np.testing.assert_allclose(picked.true_probability, [0.05, 0.2])
    assert not picked.correct.any()
    assert picked.rows()[0] == {
        "index": 3,
        "true": "1",
        "predicted": "0",
        "true_probability": pytest.approx(0.05),
        "predicted_probability": pytest.approx(0.95),
    }
    assert len(most_confident_mistakes(fake_predictions([0], [[1.0, 0.0]]))) == 0


def test_sample_predictions_seeded_and_in_order() -> None:
    p = fake_predictions(np.zeros(50, int), np.tile([[0.6, 0.4]], (50, 1)))
    a, b = sample_predictions(p, 10, seed=3), sample_predictions(p, 10, seed=3)
    assert a.indices.tolist() == b.indices.tolist() == sorted(a.indices.tolist())
    assert sample_predictions(p, 10, seed=4).indices.tolist() != a.indices.tolist()
    assert len(sample_predictions(p, 500)) == 50


# ----- representations --------------------------------------------------------------------
def test_embedding_shapes_and_stratified_tsne_subset() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    features = rng.normal(size=(200, 12)) + labels[:, None]
    pca = embed(features, labels, ("a", "b", "c", "d"), method="pca", layer="hidden")
    assert pca.points.shape == (200, 2) and len(pca.explained_variance) == 2
    assert pca.explained_variance[0] >= pca.explained_variance[1] > 0
    tsne = embed(features, labels, ("a", "b", "c", "d"), method="tsne", samples=40, seed=1)
    assert tsne.points.shape == (40, 2) and np.bincount(tsne.labels).tolist() == [10] * 4
    np.testing.assert_array_equal(tsne.labels, labels[tsne.indices])
    again = embed(features, labels, ("a", "b", "c", "d"), method="tsne", samples=40, seed=1)
    np.testing.assert_allclose(again.points, tsne.points)  # seeded
    assert "40 of 200" in tsne.note and tsne.kl_divergence is not None
    with pytest.raises(ConfigError, match="must be one of pca, tsne; got 'umap'"):
        embed(features, labels, ("a",) * 4, method="umap")


# ----- weights ----------------------------------------------------------------------------
def test_weight_statistics_match_numpy() -> None:
    torch.manual_seed(0)
    model = MLP((3, 5, 7), [20, 9], 4)
    layers = layer_weights(model, bins=30)
    linears = [model.hidden[0].linear, model.hidden[1].linear, model.output]
    assert [w.name for w in layers] == ["hidden.0", "hidden.1", "output"]
    for stats, linear in zip(layers, linears, strict=True):
        w = linear.weight.detach().double().numpy()
        assert stats.shape == w.shape
        assert stats.mean == pytest.approx(np.mean(w), rel=1e-12)
        assert stats.std == pytest.approx(np.std(w), rel=1e-12)
        assert (stats.min, stats.max) == (w.min(), w.max())
        assert stats.l2 == pytest.approx(np.linalg.norm(w), rel=1e-12)
        counts, edges = np.histogram(w, bins=30)
        np.testing.assert_array_equal(stats.counts, counts)
        np.testing.assert_allclose(stats.edges, edges)
        assert stats.to_dict()["layer"] == stats.name


def test_first_layer_units_are_input_shaped_largest_norm_first() -> None:
    torch.manual_seed(0)
    model = MLP((3, 5, 7), [30], 4)
    first = first_layer(model, n=6)
    w = model.hidden[0].linear.weight.detach()
    norms = w.norm(dim=1)
    assert first.weights.shape == (6, 3, 5, 7) and first.layer == "hidden.0"
    assert first.units.tolist() == torch.argsort(norms, descending=True)[:6].tolist()
    np.testing.assert_array_equal(first.weights[0], w[first.units[0]].view(3, 5, 7).numpy())
    assert first_layer(model, n=4, order="index").units.tolist() == [0, 1, 2, 3]
    logistic = first_layer(MLP((1, 4, 6), [], 3), n=25, classes=("x", "y", "z"))
    assert logistic.layer == "output" and logistic.names == ("class x", "class y", "class z")


def test_a_flat_input_models_units_keep_its_shape() -> None:
    model = MLP((6,), [4], 2)
    assert first_layer(model, n=3, order="index").weights.shape == (3, 6)


def test_a_cropped_models_units_are_whole_images_with_a_zero_border() -> None:
    torch.manual_seed(0)
    model = MLP((2, 7, 6), [5], 3, crop=1)
    first = first_layer(model, n=5, order="index")
    w = model.hidden[0].linear.weight.detach().view(5, 2, 5, 4)
    assert first.weights.shape == (5, 2, 7, 6)
    np.testing.assert_array_equal(first.weights[:, :, 1:6, 1:5], w.numpy())
    border = np.ones((7, 6), bool)
    border[1:6, 1:5] = False
    assert not first.weights[:, :, border].any()


# ----- imagining a class ------------------------------------------------------------------
def test_random_search_keeps_each_class_best_candidate_in_batches() -> None:
    torch.manual_seed(0)
    model = MLP((3, 4, 6), [10], 5).eval()
    norm = Normalization((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    shapes = []
    handle = model.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape)))
    found = random_search(model, norm, candidates=40, iterations=3, seed=7)
    handle.remove()
    assert shapes[:3] == [(40, 3, 4, 6)] * 3  # one forward pass per batch of candidates
    # the same candidates, scored all at once: each class keeps its best one
    g = torch.Generator().manual_seed(7)
    pixels = torch.cat([torch.rand((40, 3, 4, 6), generator=g) for _ in range(3)])
    scale, offset = norm.affine()
    with torch.no_grad():
        probs = torch.softmax(model(pixels * (255 * scale) + offset), 1)
    best = probs.argmax(0)
    np.testing.assert_allclose(found.images, pixels[best].numpy())
    np.testing.assert_allclose(found.target_probability, probs.max(0).values.numpy(), rtol=1e-5)
    assert found.targets.tolist() == [0, 1, 2, 3, 4] and found.images.shape == (5, 3, 4, 6)
    again = random_search(model, norm, candidates=40, iterations=3, seed=7)
    np.testing.assert_array_equal(again.images, found.images)


def test_imagined_probabilities_are_calibrated_by_the_temperature() -> None:
    torch.manual_seed(0)
    model = MLP((1, 4, 4), [10], 3).eval()
    norm = Normalization((0.5,), (0.2,))
    for search in (random_search, gradient_ascent):
        own, calibrated = (search(model, norm, seed=3, temperature=t) for t in (1.0, 2.0))
        np.testing.assert_array_equal(calibrated.images, own.images)  # the same search
        expected = torch.softmax(torch.from_numpy(own.probabilities).double().log() / 2.0, 1)
        np.testing.assert_allclose(calibrated.probabilities, expected.numpy(), rtol=1e-5)


def test_gradient_ascent_raises_the_class_probability_within_valid_pixels(tmp_path) -> None:
    data = make_images(classes=3, channels=3, height=5, width=8)
    result = train(quick(tmp_path), dataset=data)
    model, norm, classes = result.run.load_model()
    start = gradient_ascent(model, norm, classes, steps=1, lr=0.0)
    found = gradient_ascent(model, norm, classes, steps=60, seed=1)
    assert found.images.shape == (3, 3, 5, 8) and found.images.dtype == np.float32
    assert found.images.min() >= 0 and found.images.max() <= 1
    assert (found.target_probability > start.target_probability).all()
    assert (found.target_probability > 0.5).all()  # well above chance (1/3), penalties and all
    free = gradient_ascent(model, norm, classes, steps=60, l2=0, tv=0)
    assert (free.target_probability > 0.99).all()
    assert found.rows()[0]["class"] == "k0" and found.settings["steps"] == 60
    picked = gradient_ascent(model, norm, classes, targets=[2], steps=2)
    assert picked.targets.tolist() == [2]
    with pytest.raises(ConfigError, match=r"indices 0..2; got \[3\]"):
        gradient_ascent(model, norm, targets=[3])
    with pytest.raises(ConfigError, match="imagine steps must be >= 1; got 0"):
        gradient_ascent(model, norm, steps=0)


# ----- curves ----------------------------------------------------------------------------------
def test_curves_from_history_with_and_without_validation() -> None:
    # one epoch per row, as metrics.jsonl holds them (fmt: skip below)
    history = [
        {"epoch": 1, "train_loss": 1.0, "train_accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6, "lr": 0.1},
        {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.7, "val_loss": None, "val_accuracy": None, "lr": 0.05},
    ]  # fmt: skip
    c = curves(history, {"best_epoch": 1, "test_accuracy": 0.55, "test_loss": 0.95}, "r")
    assert c.epochs.tolist() == [1, 2] and c.best_epoch == 1 and c.test_accuracy == 0.55
    assert c.val_loss[0] == 0.9 and np.isnan(c.val_loss[1]) and c.has_validation
    assert not curves(history[1:]).has_validation and curves([]).epochs.shape == (0,)


def test_curves_leave_out_records_without_an_epoch() -> None:
    """metrics.jsonl allows a null epoch (and a foreign file may lack one): such a record is
    left out of the curves, not a KeyError from compare_runs or the report."""
    history = [
        {"epoch": 1, "train_loss": 1.0, "val_loss": 0.9},
        {"train_loss": 0.7},
        {"epoch": None, "train_loss": 0.6},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.8},
    ]
    c = curves(history)
    assert c.epochs.tolist() == [1, 2] and c.train_loss.tolist() == [1.0, 0.5]


# ----- a dataset on its own ----------------------------------------------------------------------
def test_dataset_numbers_match_numpy() -> None:
    data = make_images(classes=4, channels=3, height=5, width=6, n_train=120)
    images, labels = data.train.images.numpy(), data.train.labels.numpy()
    np.testing.assert_array_equal(class_counts(data.train, 5), np.bincount(labels, minlength=5))
    means = class_means(data.train, 4)
    for c in range(4):
        np.testing.assert_allclose(means[c], images[labels == c].mean(0, dtype=np.float64))
    hist = intensity_histogram(data.train)
    assert hist.shape == (3, 256) and (hist.sum(1) == 120 * 5 * 6).all()
    np.testing.assert_array_equal(hist[1], np.bincount(images[:, 1].ravel(), minlength=256))
    stats = channel_statistics(hist)
    fitted = Normalization.fit(data.train.images)
    assert [s["mean"] for s in stats] == pytest.approx(list(fitted.mean), rel=1e-12)
    assert [s["std"] for s in stats] == pytest.approx(list(fitted.std), rel=1e-12)
    table = samples_per_class(data.train, 5, per_class=4, seed=0)
    assert table.shape == (5, 4) and (table[4] == -1).all()  # class 4 has no samples
    assert all((labels[table[c]] == c).all() for c in range(4))


def test_pairwise_correlations_match_numpy() -> None:
    data = make_images(classes=2, channels=1, height=6, width=6, n_train=40)
    corr = pairwise_correlations(data.train, 1, max_samples=8, seed=0)
    assert corr.samples == 8 and corr.within.shape == (8 * 7 // 2,) and corr.label == 1
    labels = data.train.labels.numpy()
    chosen = np.sort(np.random.default_rng(0).choice(np.flatnonzero(labels == 1), 8, replace=False))
    expected = np.corrcoef(data.train.images.numpy()[chosen].reshape(8, -1).astype(float))
    np.testing.assert_allclose(corr.within, expected[np.triu_indices(8, 1)], rtol=1e-10)
    assert corr.median_within > corr.median_across  # images of one class look alike
    with pytest.raises(ConfigError, match="class 5 has 0 sample"):
        pairwise_correlations(data.train, 5)
