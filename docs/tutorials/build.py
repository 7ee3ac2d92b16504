"""Write the tutorial notebooks (docs/tutorials/*.ipynb) from the cells below.

The notebooks are stored without outputs; this script is their source. Edit a cell here, run
``python docs/tutorials/build.py``, and commit both: ``tests/docs/test_tutorials.py`` checks
that the stored notebooks are what this script writes, and runs each one in a real kernel.

Cells are written as ``md(...)`` (markdown) and ``code(...)``; each notebook is a list.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

KERNEL = {
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def md(text: str) -> nbformat.NotebookNode:
    return new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str) -> nbformat.NotebookNode:
    return new_code_cell(textwrap.dedent(text).strip("\n"))


# The parameters cell every MNIST notebook opens with: SMALL is the test suite's quick version.
PARAMETERS = """
%matplotlib inline
import os

# MLPLAB_TUTORIAL_SMALL=1 (the test suite) shrinks every run to seconds; unset, the real recipes run.
SMALL = os.environ.get("MLPLAB_TUTORIAL_SMALL") == "1"
# Real data: MNIST is looked for in $MLPLAB_DATA_DIR (and the usual places), else downloaded.
print("small mode" if SMALL else "full mode", "| MLPLAB_DATA_DIR =", os.environ.get("MLPLAB_DATA_DIR"))
"""

SHRINK = '''
from mlplab import Config


def sized(config: Config, epochs: int = 2, limit: int = 10_000) -> Config:
    """The config as given (full mode), or its quick version: `limit` training images, `epochs` epochs."""
    if not SMALL:
        return config
    return config.with_overrides({"data.limit": limit, "train.epochs": epochs})
'''


NOTEBOOKS: dict[str, list[nbformat.NotebookNode]] = {}

NOTEBOOKS["01-linear-to-mlp"] = [
    md("""
    # 1. From a straight line to an MLP on MNIST

    The classic path of the "MLP on MNIST with PyTorch" tutorials, with mlplab's Python API:

    1. **linear regression**: one linear layer fits a line to noisy points (the `linreg` preset);
    2. **logistic regression**: the same linear layer, ten outputs and a softmax, classifies
       MNIST digits (the `logistic` preset);
    3. **a multilayer perceptron**: two hidden layers with ReLU between them (the `tutorial`
       preset, Ben Trevett's 784-250-100-10 MLP).

    You will see what `train()` returns, where a run is written, and how to compare runs.

    **Time**: about {full_01} in full (measured on a busy 2-core AMD EPYC); seconds with
    `MLPLAB_TUTORIAL_SMALL=1`.
    """),
    code(PARAMETERS),
    code(SHRINK),
    md("""
    ## Linear regression: one layer, one weight, one bias

    The `linreg` preset is the courses' opener: 500 points from scikit-learn's
    `make_regression` (one feature, noise 10), 400 to train on and 100 to test, one
    `nn.Linear(1, 1)` trained by SGD on the mean squared error. It takes a second even in full,
    so it is never shrunk.
    """),
    code("""
    from IPython.display import Image

    from mlplab import train

    line = train(Config.preset("linreg"), progress=False)
    fit = line.summary["line"]
    print(f"run directory: {line.run_dir}")
    print(f"SGD:                  slope {fit['slope']:.4f}, intercept {fit['intercept']:.4f}")
    print(f"least squares (sklearn): slope {fit['sklearn_slope']:.4f}, intercept {fit['sklearn_intercept']:.4f}")
    print(f"test R² {line.summary['test_r2']:.4f}, RMSE {line.summary['test_rmse']:.2f}")
    Image(filename=str(line.run_dir / fit["plot"]))
    """),
    md("""
    SGD lands on the least-squares line (scikit-learn's `LinearRegression`, computed in closed
    form on the same 400 points): gradient descent on the squared error solves the same
    problem, one step at a time. The R² says how much of the targets' variance the line
    explains; the rest is the noise `make_regression` added, which no model can predict.

    Everything about the run is in its **run directory**: the config, the weights
    (`model.safetensors`), the per-epoch metrics, the summary and a `README.md` model card.
    """),
    code("""
    sorted(p.name for p in line.run_dir.iterdir())
    """),
    md("""
    ## Logistic regression: the same layer, ten outputs

    To classify 28x28 digits, the linear layer takes the 784 pixels and gives one score
    (**logit**) per class; softmax turns the ten logits into probabilities and the
    cross-entropy loss pushes up the right class's. There is no hidden layer
    (`model.hidden: []`). We load MNIST once and hand the same tensors to every run.
    """),
    code("""
    from mlplab import load_dataset

    data = load_dataset("mnist")
    print(data.train.images.shape, data.train.images.dtype, "| test", tuple(data.test.images.shape))
    print(Config.preset("logistic").summary())
    """),
    code("""
    logistic = train(sized(Config.preset("logistic")), dataset=data, progress=False)
    print(f"logistic regression: test accuracy {logistic.summary['test_accuracy']:.2%}")
    """),
    md("""
    A linear model already gets most digits right (about 92% in full): each class has one
    template of 784 weights, and the logit is how well the image matches it. Those templates
    are the layer's weights; drawn as 28x28 images, red pixels speak for the class and blue
    against it.
    """),
    code("""
    import matplotlib.pyplot as plt

    weights = logistic.model.state_dict()["output.weight"].reshape(10, 28, 28)
    fig, axes = plt.subplots(1, 10, figsize=(12, 1.6))
    for digit, (ax, w) in enumerate(zip(axes, weights)):
        bound = w.abs().max()
        ax.imshow(w, cmap="bwr", vmin=-bound, vmax=bound)
        ax.set_title(str(digit))
        ax.axis("off")
    """),
    md("""
    ## A multilayer perceptron

    Two hidden layers (250 and 100 units, ReLU) between the pixels and the ten logits let the
    model combine strokes into parts and parts into digits, which one template per class
    cannot. The `tutorial` preset also rotates and shifts the training images a little each
    epoch (augmentation) and decays the learning rate with a cosine.
    """),
    code("""
    mlp = train(sized(Config.preset("tutorial")), dataset=data, progress=False)
    print(f"MLP: test accuracy {mlp.summary['test_accuracy']:.2%}, best epoch {mlp.summary['best_epoch']}")
    for epoch in mlp.history:
        print({k: round(v, 4) for k, v in epoch.items() if k in ("epoch", "train_loss", "val_loss", "val_accuracy")})
    """),
    md("""
    `history` holds one dict per epoch (the lines of `metrics.jsonl`). The validation split
    (10% of the training images, held out) picks the epoch whose weights are kept; the test
    split is scored once, at the end, and chooses nothing.

    ## The three side by side

    `compare_runs` reads the run directories alone (no data): their results, curves and
    weight statistics. In a notebook its card shows the table and the curves overlaid.
    """),
    code("""
    from mlplab.report.compare import compare_runs

    comparison = compare_runs([logistic.run_dir, mlp.run_dir])
    print(comparison.table())
    comparison
    """),
    md("""
    In full mode the MLP gains about six points over the logistic regression (about 98.5% vs
    92%): most of the remaining errors are digits a person would also hesitate on.
    `evaluate(run_dir)` scores any run again from its directory:
    """),
    code("""
    from mlplab import evaluate

    evaluate(mlp.run_dir)
    """),
    md("""
    **Next**: [02-what-the-mlp-learned.ipynb](02-what-the-mlp-learned.ipynb) opens the MLP up.
    """),
]

NOTEBOOKS["02-what-the-mlp-learned"] = [
    md("""
    # 2. What the MLP learned

    Train the `tutorial` MLP, then look inside it with `mlplab.RunAnalysis` and
    `mlplab.analysis.figures`:

    - **mistakes**: the confusion matrix and the most confident wrong answers;
    - **hidden layers**: the last hidden layer's 100 numbers per image, projected by PCA and
      t-SNE;
    - **first-layer weights**: what the 250 first units look for;
    - **imagined digits**: inputs the model itself finds most typical of each class.

    **Time**: about {full_02} in full (measured on a busy 2-core AMD EPYC); seconds with
    `MLPLAB_TUTORIAL_SMALL=1`.
    """),
    code(PARAMETERS),
    code(SHRINK),
    code("""
    from mlplab import RunAnalysis, train

    result = train(sized(Config.preset("tutorial")), progress=False)
    print(f"{result.run_dir}: test accuracy {result.summary['test_accuracy']:.2%}")

    # Every analysis is computed when first asked for, then kept. Small mode shrinks the costly ones.
    analysis = RunAnalysis(
        result.run_dir,
        tsne_samples=300 if SMALL else 2000,  # points in each t-SNE map
        tsne_iterations=250 if SMALL else 500,  # t-SNE optimizer steps
        ascent_steps=30 if SMALL else 200,  # gradient-ascent steps per imagined digit
        candidates=200 if SMALL else 1000,  # random images per step of the random search
        iterations=5 if SMALL else 20,  # steps of the random search
    )
    analysis
    """),
    md("""
    ## Mistakes

    The confusion matrix counts, for each true class (row), what the model answered
    (column); the diagonal is right. The off-diagonal cells that stand out are the pairs that
    share strokes: 4 and 9, 3 and 5, 7 and 2.
    """),
    code("""
    print(analysis.confusion.counts)
    analysis.confusion.most_confused(5)
    """),
    code("""
    analysis.figure("confusion")
    """),
    md("""
    The most confident mistakes are the most instructive: with the true label, the answer and
    its probability. Many are ambiguous or badly written; some are wrong labels in MNIST
    itself. A model that is *confidently* wrong on clear digits would be the worrying kind.
    """),
    code("""
    from mlplab.analysis import figures, most_confident_mistakes

    worst = most_confident_mistakes(analysis.predictions, 12)
    figures.mistakes_figure(worst)
    """),
    md("""
    ## Hidden layers

    `predictions.hidden` holds each test image's last hidden layer: 100 numbers, the
    representation the output layer separates linearly. PCA shows its two directions of most
    variance; t-SNE keeps neighbours together. Clusters by colour (true class) mean the network
    has made the classes easy to tell apart; points inside another class's cluster are the
    mistakes above.
    """),
    code("""
    print("last hidden layer:", analysis.predictions.hidden.shape)
    for layer, embedding in analysis.pca.items():
        if not embedding.empty:
            print(f"{layer}: the first two principal components explain", [f"{v:.1%}" for v in embedding.explained_variance])
    analysis.figure("pca")
    """),
    code("""
    analysis.figure("tsne")
    """),
    md("""
    ## First-layer weights

    Each first-layer unit takes a weighted sum of the 784 pixels; its weights, drawn as a
    28x28 image, show the pattern it responds to (red: ink there raises it, blue: lowers it).
    Trained units look like strokes and blobs; units that still look like noise learned
    little (expect many of them in small mode, after a few hundred steps).
    """),
    code("""
    analysis.figure("weights")
    """),
    md("""
    ## Imagined digits

    Turn the question around: which input makes the model most sure of a class? A random
    search tries thousands of random-noise images and keeps the one that scores highest (its
    probability is in each title); gradient ascent changes the pixels along the gradient of
    the class's log-probability until the model is sure. The results rarely look like digits:
    the model's "7" is the evidence it counts, not a picture of a seven, which is why an MLP
    can be fooled by inputs a person would never call digits (notebook 6 deals with that).
    """),
    code("""
    imagined = analysis.gradient_ascent
    print("the model's probability for each imagined digit:", [round(float(p), 3) for p in imagined.target_probability])
    analysis.figure("imagine")
    """),
    md("""
    All of these figures, with a caption each, are one page: `mlplab.report.run_report.report(analysis)`
    writes `report.html` into the run directory (`mlplab report RUN` from a shell).

    **Next**: [03-regularisation-and-schedules.ipynb](03-regularisation-and-schedules.ipynb).
    """),
]

NOTEBOOKS["03-regularisation-and-schedules"] = [
    md("""
    # 3. Regularisation and schedules: a small ablation

    Start from the `tutorial` recipe and change one thing at a time: dropout, weight decay,
    no augmentation, a constant learning rate. Compare the runs on the **validation** split
    and choose there; the test split is looked at once, for the chosen recipe only.

    **Time**: about {full_03} in full (measured on a busy 2-core AMD EPYC: five 10-epoch runs); seconds
    with `MLPLAB_TUTORIAL_SMALL=1`.
    """),
    code(PARAMETERS),
    code(SHRINK),
    md("""
    ## The variants

    Each is the `tutorial` preset plus the config keys it changes (the same keys as the
    command line's `--set`). Every run uses the same seed, so the only difference is the change.
    """),
    code("""
    from mlplab import load_dataset, train

    VARIANTS = {
        "baseline": {},
        "dropout": {"model.dropout": 0.2},  # drop 20% of hidden units at each step
        "weight-decay": {"train.optimizer": "adamw", "train.weight_decay": 0.05},  # decoupled decay
        "no-augment": {"augment.rotation": 0.0, "augment.shift": 0},  # the images as they are
        "constant-lr": {"train.scheduler": "none"},  # the original notebook's constant rate
    }
    data = load_dataset("mnist")
    runs = {}
    for name, changes in VARIANTS.items():
        config = Config.preset("tutorial").with_overrides({**changes, "run.name": name})
        config = sized(config, limit=5000)  # small mode: five runs, so half the images
        runs[name] = train(config, dataset=data, progress=False)
        print(f"{name:13s} best val accuracy {runs[name].summary['best_val_accuracy']:.2%}")
    """),
    md("""
    ## Compared on validation accuracy

    `compare_runs` puts them side by side (its card overlays the curves: validation solid,
    training dashed). Read the **val** columns: a wide gap between training and validation
    loss is overfitting, which dropout and weight decay fight; augmentation fights it by
    showing new versions of the images. In one full run here (2-core AMD EPYC) the recipe as
    it is won, at 98.43% validation accuracy, and each change cost 0.15 to 0.5 points
    (weight decay 98.28%, dropout 98.12%, no augmentation 98.07%, a constant rate 97.93%):
    the recipe was tuned with these already in it, and ten epochs are too few for dropout to
    pay. Differences of a tenth or two are within the spread between seeds (about ±0.1), so a
    real decision repeats each variant over seeds (`mlplab sweep`). In small mode (5,000
    images, 2 epochs) the ranking says little.
    """),
    code("""
    from mlplab.report.compare import compare, compare_runs

    comparison = compare_runs([run.run_dir for run in runs.values()])
    comparison
    """),
    code("""
    ranked = sorted(runs, key=lambda name: runs[name].summary["best_val_accuracy"], reverse=True)
    for name in ranked:
        s = runs[name].summary
        print(f"{name:13s} val accuracy {s['best_val_accuracy']:.2%}  val loss {s['best_val_loss']:.4f}")
    chosen = ranked[0]
    print("chosen on validation:", chosen)
    """),
    md("""
    ## The test split, once

    Only now, for the chosen recipe, the test accuracy: an estimate of what it does on new
    digits. Choosing *by* test accuracy would make that estimate optimistic, since the best
    of five noisy numbers is above the typical one.
    """),
    code("""
    print(f"{chosen}: test accuracy {runs[chosen].summary['test_accuracy']:.2%}")
    """),
    md("""
    `compare` writes the same comparison as one offline page, `compare.html` (the table, the
    curves, the weight statistics), here into `ablation/`:
    """),
    code("""
    page = compare(comparison, out="ablation")
    print(page)
    print(comparison.weight_table())
    """),
    md("""
    The weight statistics show what each change did to the weights. In the full run, weight
    decay kept the first layer's smallest (its `l2` norm 21.3, against 23.9 for the recipe)
    and the constant learning rate left them largest (34.4): with the rate never lowered, the
    last epochs still take full-size steps.
    """),
    md("""
    **Next**: [04-your-own-data.ipynb](04-your-own-data.ipynb), to train on files of your own.
    """),
]

NOTEBOOKS["04-your-own-data"] = [
    md("""
    # 4. Your own data: CSV and HDF5

    mlplab reads images from CSV (one image per row), HDF5, npz, IDX and image folders. This
    notebook writes its own small files, from scikit-learn's bundled 8x8 digits, and trains on
    them: a CSV with a `label` column, an HDF5 file with train and test splits, and a CSV
    table whose target is a number (regression). No download is needed.

    **Time**: about {full_04} in full (measured on a busy 2-core AMD EPYC); seconds with
    `MLPLAB_TUTORIAL_SMALL=1`.
    """),
    code("""
    %matplotlib inline
    import os

    SMALL = os.environ.get("MLPLAB_TUTORIAL_SMALL") == "1"
    EPOCHS = 5 if SMALL else 30  # the files are small: 30 epochs take seconds
    """),
    md("""
    ## The images

    scikit-learn's digits are 1,797 images of 8x8 pixels with values 0-16. mlplab wants 0-255
    (or [0, 1] floats), so we scale them.
    """),
    code("""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images * (255 / 16)).round().astype(np.uint8)  # (1797, 8, 8)
    labels = digits.target
    print(images.shape, labels[:10])
    """),
    md("""
    ## A CSV file

    One image per row: a header with a `label` column and one column per pixel (Kaggle's
    MNIST layout). The shape, 64 pixels = 1x8x8, is found from the number of columns.
    """),
    code("""
    import csv

    with open("digits.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", *(f"pixel{i}" for i in range(64))])
        for label, image in zip(labels, images):
            writer.writerow([label, *image.ravel()])
    print(open("digits.csv").read()[:160], "...")
    """),
    md("""
    `data inspect` (here `inspect_data`) shows what mlplab makes of a file before you train:
    the format, the shape, the classes and their counts, and anything suspicious.
    """),
    code("""
    from mlplab.data.formats import read_any
    from mlplab.data.inspection import inspect_data

    print(inspect_data(read_any("digits.csv")).to_text())
    """),
    md("""
    Training names the file as the dataset. The CSV has no test split of its own, so a seeded,
    stratified 20% is held out as test (`data.test_size`), and 10% of the rest for validation.
    """),
    code("""
    from mlplab import Config, train

    csv_run = train(
        Config().with_overrides(
            {"data.dataset": "digits.csv", "model.hidden": [64], "train.epochs": EPOCHS, "run.name": "csv"}
        ),
        progress=False,
    )
    print(f"from CSV: test accuracy {csv_run.summary['test_accuracy']:.2%} on {csv_run.summary['samples']}")
    """),
    md("""
    ## An HDF5 file, with its own test split

    With h5py: the keys `x_train`, `y_train`, `x_test`, `y_test` are found by name. Images may
    be `(N, H, W)` or `(N, C, H, W)`.
    """),
    code("""
    import h5py

    order = np.random.default_rng(0).permutation(len(labels))
    train_idx, test_idx = order[:1400], order[1400:]
    with h5py.File("digits.h5", "w") as f:
        f["x_train"], f["y_train"] = images[train_idx], labels[train_idx]
        f["x_test"], f["y_test"] = images[test_idx], labels[test_idx]

    h5_run = train(
        Config().with_overrides(
            {"data.dataset": "digits.h5", "model.hidden": [64], "train.epochs": EPOCHS, "run.name": "h5"}
        ),
        progress=False,
    )
    print(f"from HDF5: test accuracy {h5_run.summary['test_accuracy']:.2%} on {h5_run.summary['samples']}")
    """),
    md("""
    The run directory records where its data came from (`dataset.json`), so everything after
    training, such as `evaluate`, finds the file again:
    """),
    code("""
    from mlplab import evaluate

    print(open(h5_run.run_dir / "dataset.json").read())
    evaluate(h5_run.run_dir)
    """),
    md("""
    ## Predicting a number: a CSV table with a target

    `data.target` names the column to predict; every other column is a feature and the task is
    regression (mean squared error, R²). Here: scikit-learn's diabetes table, disease
    progression from ten measurements.
    """),
    code("""
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes()  # 442 rows: 10 features and the target
    with open("diabetes.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*diabetes.feature_names, "target"])
        writer.writerows([*row, y] for row, y in zip(diabetes.data, diabetes.target))
    regression = train(
        Config().with_overrides(
            {
                "data.dataset": "diabetes.csv",
                "data.target": "target",
                "model.hidden": [32],
                "train.epochs": 100,  # a second: the table has 442 rows
                "train.lr": 0.01,
                "run.name": "diabetes",
            }
        ),
        progress=False,
    )
    print({k: round(regression.summary[k], 3) for k in ("test_r2", "test_rmse", "test_mae")})
    """),
    md("""
    R² is the share of the target's variance the model explains (1 is perfect, 0 is no better
    than predicting the mean). About 0.4 here: the ten measurements explain only part of how
    the disease progresses, and a linear model does no better on this table.

    Errors in your files are reported with the file, line and column. For example, a label
    that is not a whole number:
    """),
    code("""
    from mlplab import DataError, load_dataset

    with open("broken.csv", "w") as f:
        f.write("label,a,b,c,d\\n1,0,0,0,0\\n1.5,0,0,0,0\\n")
    try:
        load_dataset("broken.csv")
    except DataError as error:
        print(error)
    """),
    md("""
    Every format, its options (`image_shape`, `images_key`, ...) and its limits:
    [docs/formats.md](../formats.md). **Next**: [05-shipping.ipynb](05-shipping.ipynb).
    """),
]

NOTEBOOKS["05-shipping"] = [
    md("""
    # 5. Shipping a model: export, predict, serve

    A trained run directory is all that shipping needs. This notebook:

    1. exports the model to **ONNX** and **TorchScript** (normalization built in, checked
       against the eager model) and runs the ONNX file with onnxruntime;
    2. **predicts** on image files, the way photos of digits are brought to MNIST's form;
    3. starts the **server** on 127.0.0.1 (a free port), queries it over HTTP, and stops it.

    **Time**: about {full_05} in full (measured on a busy 2-core AMD EPYC); seconds with
    `MLPLAB_TUTORIAL_SMALL=1`.
    """),
    code(PARAMETERS),
    code(SHRINK),
    code("""
    from mlplab import load_dataset, train

    data = load_dataset("mnist")
    run = train(sized(Config.preset("tutorial")), dataset=data, progress=False).run_dir
    print(run)
    """),
    md("""
    ## Export

    `export` writes the file, loads it back and compares it with the eager model on real test
    images and random ones; the figure it returns is the largest difference seen. The exported
    model takes raw pixels in [0, 1], `(N, 1, 28, 28)`, any batch size, and also returns the
    rejection's score (notebook 6).
    """),
    code("""
    from mlplab.inference.export import export

    onnx = export(run, "onnx")
    script = export(run, "torchscript")
    for exported in (onnx, script):
        print(f"{exported.path}: max |exported - eager| = {exported.max_abs_diff:.2e}")
    """),
    md("""
    The ONNX file needs only onnxruntime and numpy to run; its metadata carries the class names
    and the rejection threshold.
    """),
    code("""
    import json

    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx.path))
    meta = json.loads(session.get_modelmeta().custom_metadata_map["mlplab"])
    pixels = data.test.images[:8].numpy().astype(np.float32) / 255  # (8, 1, 28, 28) in [0, 1]
    logits, scores, codes = session.run(None, {"pixels": pixels})
    print("predicted:", [meta["classes"][i] for i in logits.argmax(1)])
    print("true:     ", [meta["classes"][i] for i in data.test.labels[:8]])
    """),
    md("""
    ## Predict on image files

    Write a few test digits as PNG files, and one digit drawn as a person would: dark ink on
    white paper, large and off-centre. `predict` converts each to MNIST's form (grayscale,
    inverted when the background is light, cropped to the ink, fitted into 20x20 and centred
    by its centre of mass) before the model sees it; `show=` writes what the model saw.
    """),
    code("""
    from pathlib import Path

    from PIL import Image, ImageDraw

    Path("photos").mkdir(exist_ok=True)
    for i in range(4):
        Image.fromarray(data.test.images[i, 0].numpy()).save(f"photos/test{i}-label{int(data.test.labels[i])}.png")
    paper = Image.new("RGB", (300, 200), "white")  # a 7 drawn with a marker, off-centre
    ImageDraw.Draw(paper).line([(150, 40), (230, 40), (180, 170)], fill=(20, 20, 80), width=14)
    paper.save("photos/drawn-seven.png")
    Image.new("L", (64, 64), 255).save("photos/blank.png")  # blank paper: not a digit
    """),
    code("""
    from mlplab.inference import predict

    for answer in predict(run, ["photos"], show="seen"):
        verdict = f"rejected: {answer.get('reason')}" if answer["rejected"] else ""
        print(f"{Path(answer['file']).name:22s} {answer['class']}  {answer['probability']:6.1%}  {verdict}")
    """),
    md("""
    The test digits come back with their labels. The blank page is *rejected*: the model
    still picks some class (softmax always does), but mlplab's rejection says the input is
    unlike anything in training (notebook 6). The drawn seven, once brought to MNIST's form
    (open `seen/` to see it), is read as a 7 although no training image looked like the file.

    ## Serve

    The same model behind HTTP: FastAPI and uvicorn. `mlplab serve RUN` does it from a shell;
    here we start it in a background thread on 127.0.0.1 with port 0 (the system picks a free
    port), so the notebook can query it and then stop it.
    """),
    code("""
    import threading

    from mlplab.serve import bind, create_app, uvicorn_server

    sockets = bind("127.0.0.1", 0)  # port 0: any free port
    port = sockets[0].getsockname()[1]
    server = uvicorn_server(create_app(run), log_level="warning")
    thread = threading.Thread(target=server.run, kwargs={"sockets": sockets}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    print("serving on", url)
    """),
    code("""
    import time

    import httpx

    for _ in range(100):  # wait until it answers (it loads the model first)
        try:
            health = httpx.get(f"{url}/health").json()
            break
        except httpx.TransportError:
            time.sleep(0.1)
    else:
        raise RuntimeError(f"the server at {url} did not answer within 10 s")
    print("health:", health)
    files = [("file", (p.name, p.read_bytes(), "image/png")) for p in sorted(Path("photos").glob("*.png"))]
    answer = httpx.post(f"{url}/predict", params={"top_k": 2}, files=files).json()
    for path, prediction in zip(sorted(Path("photos").glob("*.png")), answer["predictions"]):
        print(f"{path.name:22s}", {k: prediction[k] for k in ("class", "probability", "rejected")})
    """),
    md("""
    JSON works too: `{"pixels": ...}` with values in [0, 1], one image or a batch. Concurrent
    requests are batched together on the server.
    """),
    code("""
    one = (data.test.images[0, 0].float() / 255).tolist()  # 28 x 28 nested lists
    print(httpx.post(f"{url}/predict", params={"top_k": 1}, json={"pixels": one}).json())
    """),
    code("""
    server.should_exit = True  # what Ctrl-C does to `mlplab serve`
    thread.join(timeout=10)
    print("stopped:", not thread.is_alive())
    """),
    md("""
    Outside a notebook: `mlplab serve RUN` (and `http://127.0.0.1:8000/` is a page to draw
    digits on). Limits, the drawing page, the exports' inputs and outputs:
    [docs/shipping.md](../shipping.md). **Next**: [06-trust.ipynb](06-trust.ipynb).
    """),
]

NOTEBOOKS["06-trust"] = [
    md("""
    # 6. Trust: calibrated probabilities, "not a digit", explanations, robustness

    A classifier's answer is worth what its confidence is worth. This notebook looks at a
    trained MLP four ways:

    - **calibration**: does a probability of 0.9 mean right 9 times in 10?
    - **rejection**: does it notice an input that is not a digit at all?
    - **explanations**: which pixels made it answer what it did (Captum)?
    - **robustness**: how does accuracy fall when the digits are rotated, blurred, noisy?

    **Time**: about {full_06} in full (measured on a busy 2-core AMD EPYC); seconds with
    `MLPLAB_TUTORIAL_SMALL=1`.
    """),
    code(PARAMETERS),
    code(SHRINK),
    code("""
    from mlplab import RunAnalysis, load_dataset, train

    data = load_dataset("mnist")
    result = train(sized(Config.preset("tutorial")), dataset=data, progress=False)
    run = result.run_dir
    analysis = RunAnalysis(run, rejection_samples=200 if SMALL else 1000)
    print(f"{run}: test accuracy {result.summary['test_accuracy']:.2%}")
    """),
    md("""
    ## Calibration

    A network's softmax outputs are often over-confident, or, trained on augmented images as
    this one, a little under-confident. When training ends, mlplab fits one **temperature** T
    on the validation split (logits divided by T before the softmax: T > 1 softens them, T < 1
    sharpens them) and every probability it shows afterwards is the calibrated one. The expected calibration error (ECE) is the average gap between confidence and
    accuracy over confidence bins: lower is better. The answers (the argmax) do not change.
    """),
    code("""
    s = result.summary
    print(f"temperature {analysis.temperature:.3f}")
    print(f"test ECE {s['test_ece_uncalibrated']:.2%} before, {s['test_ece']:.2%} after; NLL {s['test_nll']:.4f}")
    analysis.figure("reliability")
    """),
    md("""
    In one full run here T was 0.956 and the test ECE went from 0.27% to 0.20%: the recipe was
    nearly calibrated already. In small mode (two epochs on 10,000 images) the gap is larger.
    In the reliability diagram a calibrated model's bars follow the diagonal. `calibrate`
    fits the temperature again and writes it into the run: on the validation split (the
    test split never chooses anything), which gives the same T as at the end of training, or
    with `dataset=` on another dataset of the same classes, e.g. digits from the place the
    model will be used.
    """),
    code("""
    from mlplab.trust.calibration import calibrate

    refit = calibrate(run)
    print(f"T {refit.temperature_before:.3f} -> {refit.temperature:.3f} on {refit.samples} {refit.split} images: "
          f"ECE {refit.ece_before:.2%} -> {refit.ece_after:.2%}")
    """),
    md("""
    ## Rejection: "not sure this is a digit"

    Softmax always sums to one, so a blank page or a smiley still gets a class with a high
    probability. mlplab fits a second opinion when training ends: scores of how unlike the
    training images an input is (its pixels, the network's hidden layers), with a threshold
    that accepts 98% of the validation split (`train.accept`). Inputs above it are rejected,
    with the reason.
    """),
    code("""
    import torch

    from mlplab.trust.negatives import negatives
    from mlplab.trust.rejection import Rejector

    rejector = Rejector.load(run)
    model = analysis.model
    digits = data.test.images[:200]
    strangers = negatives("shapes", 8, (1, 28, 28), seed=0)  # drawn shapes, strokes, not digits
    blank = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    for name, pixels in (("test digits", digits), ("shapes", strangers), ("blank", blank)):
        verdict = rejector.score(model, pixels)
        reasons = sorted({r for r in verdict.reasons if r})
        print(f"{name:12s} rejected {verdict.rejected.float().mean():6.1%}  {reasons[:2]}")
    """),
    md("""
    About 2% of real test digits are rejected, by construction (the threshold accepts 98% of
    the validation digits), and most of the non-digits are. The report's rejection figure
    shows the scores of the test split and of sets unlike it: the further apart, the better
    the rejection separates them.
    """),
    code("""
    analysis.figure("rejection")
    """),
    md("""
    ## Explanations

    `mlplab.explain` attributes the calibrated log-odds of the predicted class to the input
    pixels with integrated gradients (Captum). Red pixels pushed towards the answer, blue
    against it; the map is shaped like the model's input.
    """),
    code("""
    import matplotlib.pyplot as plt
    from PIL import Image

    import mlplab

    for i in range(4):
        Image.fromarray(data.test.images[i, 0].numpy()).save(f"digit{i}.png")
    files = [f"digit{i}.png" for i in range(4)]
    maps = mlplab.explain(run, files, steps=16 if SMALL else 64)
    print(maps.shape)
    fig, axes = plt.subplots(2, 4, figsize=(8, 4))
    for i, name in enumerate(files):
        axes[0, i].imshow(Image.open(name), cmap="gray")
        bound = maps[i, 0].abs().max()
        axes[1, i].imshow(maps[i, 0], cmap="bwr", vmin=-bound, vmax=bound)
        for ax in axes[:, i]:
            ax.axis("off")
    """),
    md("""
    An explanation is only useful if it is faithful. The **deletion test** checks it: delete
    the most attributed pixels first and the class's probability should fall fast; deleting
    random pixels should hurt much less.
    """),
    code("""
    from mlplab.inference.explain import Explainer
    from mlplab.trust.deletion import deletion_curve

    explainer = Explainer(run)
    pixels = explainer.prepare([(None, name) for name in files])
    found = explainer.attribute(pixels, "integrated-gradients", steps=16 if SMALL else 64)
    curve = deletion_curve(explainer.model, pixels, found.maps, explainer.baseline(pixels))
    print(f"area under the deletion curve {curve.area:.3f} (attribution order) vs {curve.random_area:.3f} (random order)")
    """),
    md("""
    ## Robustness

    `robustness` scores the kept weights on corrupted copies of the test split (MNIST-C's
    corruptions, severities 1-5) and writes `robustness.json` into the run. An MLP sees pixels,
    not shapes: rotations and shifts larger than the small ones it was trained with (±5°, 2
    pixels) cost it much more than noise does. (All fifteen corruptions take minutes; here
    three.)
    """),
    code("""
    from mlplab.analysis.robustness import robustness

    r = robustness(run, corruptions=["rotate", "translate", "shot_noise"], severities=[1, 3, 5], limit=500 if SMALL else None)
    print(f"clean: {r.clean.accuracy:.1%} (rejected {r.clean.rejected_fraction:.1%})")
    for name, cells in r.corruptions.items():
        row = "  ".join(
            f"severity {k}: {cell.accuracy:6.1%} (rejected {cell.rejected_fraction:5.1%})" for k, cell in cells.items()
        )
        print(f"{name:11s} {row}")
    """),
    md("""
    The rejected fraction grows with the severity too: the rejection notices that heavily
    corrupted digits are unlike training. The method behind each of these, and what was
    measured on MNIST: [docs/trust.md](../trust.md), [docs/explain.md](../explain.md),
    [docs/robustness.md](../robustness.md).
    """),
]

# Measured full-mode times, quoted in each notebook's first cell ("not measured" until they are).
# One run each, 2026-12-05, 2-core AMD EPYC, torch's default 2 threads, load ~5 from other jobs.
FULL_TIMES = {
    "full_01": "1 minute (66 s)",
    "full_02": "1.5 minutes (89 s)",
    "full_03": "2.5 minutes (156 s)",
    "full_04": "16 s",
    "full_05": "1 minute (61 s)",
    "full_06": "2 minutes (106 s)",
}


def notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    first = cells[0].copy()
    for key, value in FULL_TIMES.items():
        first["source"] = first["source"].replace("{" + key + "}", value)
    nb = new_notebook(cells=[first, *cells[1:]], metadata=KERNEL)
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"  # stable ids: rebuilding changes nothing
    return nb


def render(name: str) -> str:
    return nbformat.writes(notebook(NOTEBOOKS[name])) + "\n"


def main() -> int:
    for name in NOTEBOOKS:
        path = HERE / f"{name}.ipynb"
        path.write_text(render(name), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
