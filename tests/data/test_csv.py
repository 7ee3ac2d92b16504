"""CSV images and tables: both layouts round-trip exactly; every malformed file is one clear line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from mlplab.data.csv import read_csv, read_csv_table
from mlplab.errors import ConfigError, FormatError


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def rows(labels: np.ndarray, pixels: np.ndarray, fmt: str = "{}") -> str:
    return "".join(
        ",".join([str(label), *(fmt.format(v) for v in row)]) + "\n"
        for label, row in zip(labels, pixels, strict=True)
    )


def files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_colab_layout_no_header(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(11, 784))
    labels = np.array([3, 0, 9, 1, 3, 2, 4, 5, 6, 7, 8])  # every digit: K = 10 is inferred
    raw = read_csv(write(tmp_path / "mnist_train_small.csv", rows(labels, pixels)))
    assert raw.image_shape == (1, 28, 28) and raw.format == "csv" and raw.test is None
    np.testing.assert_array_equal(raw.train[0].reshape(11, -1), pixels)
    np.testing.assert_array_equal(raw.train[1], labels)
    assert raw.train[0].dtype == np.uint8 and raw.train[1].dtype == np.int64
    assert raw.classes == tuple(str(i) for i in range(10))
    assert raw.notes["layout"] == "no header, labels in column 1"
    assert raw.notes["pixel scale"] == f"0-255 (detected: largest value {pixels.max()})"


def test_kaggle_layout_label_column_anywhere(tmp_path: Path) -> None:
    header = "p0,p1,label,p2,p3\n"
    path = write(tmp_path / "train.csv", header + "1,2,1,3,4\n5,6,0,7,8\n")
    raw = read_csv(path)
    np.testing.assert_array_equal(raw.train[0][:, 0], [[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    np.testing.assert_array_equal(raw.train[1], [1, 0])
    assert raw.notes["layout"] == "header row, labels in column 3 ('label')"
    assert len(raw.classes) == 2


def test_zero_one_floats_are_scaled_and_the_scale_noted(tmp_path: Path) -> None:
    pixels = np.array([[0.0, 0.5, 1.0, 0.25], [1.0, 1.0, 0.0, 0.0]])
    raw = read_csv(write(tmp_path / "f.csv", rows(np.array([0, 1]), pixels)))
    np.testing.assert_array_equal(raw.train[0].reshape(2, -1), np.rint(pixels * 255))
    assert raw.notes["pixel scale"] == "0-1 (detected: largest value 1)"
    assert raw.notes["cells"] == "decimals"


def test_pixel_scale_override(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", "0,0,1,1,0\n1,1,0,0,1\n")
    assert read_csv(path).train[0].max() == 255  # auto: all <= 1 means 0-1
    raw = read_csv(path, pixel_scale="255")
    assert raw.train[0].max() == 1 and raw.notes["pixel scale"] == "0-255 (pixel_scale=255)"
    with pytest.raises(ConfigError, match="pixel_scale must be one of auto, 255, 1 .*got '2'"):
        read_csv(path, pixel_scale="2")


def test_forced_zero_one_scale_rejects_larger_values(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", "0,0,1,7,0\n")
    with pytest.raises(
        FormatError,
        match=r"f.csv: line 1, column 4: pixel 7 is above 1, but pixels are read as 0-1 floats "
        r"\(pixel_scale=1\); for 0-255 pixels set pixel_scale 255 \(--pixel-scale 255\)$",
    ):
        read_csv(path, pixel_scale="1")


def test_square_and_cifar_shapes_inferred(tmp_path: Path) -> None:
    two = "1" + ",0" * 256 + "\n0" + ",0" * 256 + "\n"
    assert read_csv(write(tmp_path / "a.csv", two)).image_shape == (1, 16, 16)
    values = np.arange(3072) % 256
    raw = read_csv(write(tmp_path / "b.csv", rows(np.array([1, 0]), values[None].repeat(2, 0))))
    assert raw.image_shape == (3, 32, 32)
    np.testing.assert_array_equal(raw.train[0][0, 1, 0, :3], values[1024:1027])  # channel-first


def test_other_widths_need_image_shape(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.csv", "1" + ",0" * 600 + "\n0" + ",0" * 600 + "\n")
    with pytest.raises(
        FormatError,
        match=r"wide.csv: 600 pixel columns \(besides the label\) do not make a square image \(H\*H gray or 3\*H\*H color\); give the shape, e.g. image_shape=\(1, 20, 30\) \(--image-shape 1,20,30\)$",
    ):
        read_csv(path)
    assert read_csv(path, image_shape="1,20,30").image_shape == (1, 20, 30)
    assert read_csv(path, image_shape=(3, 10, 20)).image_shape == (3, 10, 20)
    with pytest.raises(FormatError, match=r"600 pixel columns .* do not fit image_shape 1x20x20"):
        read_csv(path, image_shape=(1, 20, 20))


def test_classes_argument(tmp_path: Path) -> None:
    path = write(tmp_path / "f.csv", "1,0,0,0,0\n0,0,0,0,0\n")
    assert read_csv(path, classes=["cat", "dog", "fox"]).classes == ("cat", "dog", "fox")
    with pytest.raises(
        FormatError,
        match=r"f.csv: line 1, column 1: label 1 is out of range: 1 class names were given, so labels must be in 0..0$",
    ):
        read_csv(path, classes=["cat"])


def test_other_delimiters_blank_lines_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("\ufeff1\t0\t255\t3\t4\n\n0\t1\t2\t3\t4\n", encoding="utf-8")
    raw = read_csv(path)
    np.testing.assert_array_equal(raw.train[1], [1, 0])
    spaced = write(tmp_path / "s.txt", "1 0 255 3 4\n0  1 2 3 4\n")
    np.testing.assert_array_equal(read_csv(spaced).train[0][1, 0], [[1, 2], [3, 4]])


def test_gzip_file(tmp_path: Path) -> None:
    path = tmp_path / "train.csv.gz"
    path.write_bytes(gzip.compress(b"label,a,b,c,d\n1,0,255,3,4\n0,1,2,3,4\n"))
    raw = read_csv(path)
    np.testing.assert_array_equal(raw.train[0].ravel(), [0, 255, 3, 4, 1, 2, 3, 4])
    path.write_bytes(gzip.compress(b"label,a,b,c,d\n1,0,x,3,4\n"))
    with pytest.raises(
        FormatError, match=r"train.csv.gz: line 2, column 3 \('b'\): 'x' is not a number$"
    ):
        read_csv(path)


def test_headerless_file_with_labels_key_index(tmp_path: Path) -> None:
    raw = read_csv(write(tmp_path / "f.csv", "0,9,1,3,4\n5,6,0,7,8\n"), labels_key="2")
    np.testing.assert_array_equal(raw.train[1], [1, 0])
    np.testing.assert_array_equal(raw.train[0].ravel(), [0, 9, 3, 4, 5, 6, 7, 8])
    with pytest.raises(FormatError, match="no header row, so the label column 'label' cannot be"):
        read_csv(write(tmp_path / "g.csv", "0,0,255,3,4\n"), labels_key="label")
    for key in ("9", "-1"):  # an index, but not one of this file's: said so
        with pytest.raises(
            FormatError,
            match=rf"g\.csv: label column index {key} is out of range: the file has 5 columns, "
            r"0\.\.4 \(labels_key, --labels-key\)$",
        ):
            read_csv(tmp_path / "g.csv", labels_key=key)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"empty file; expected one row per image: a label, then pixels$"),
        ("\n\n", r"empty file; expected"),
        ("label,a,b,c,d\n", r"no data rows after the header line$"),
        ("1,0,0,0,0\n2,0,0,0\n", r"line 2 has 4 columns, expected 5 as in line 1$"),
        (
            "label,a,b,c,d\n1,0,0,0,0\n\n2,0,0,0\n",
            r"line 4 has 4 columns, expected 5 as in the header \(line 1\)$",
        ),
        ("1,0,0,0,0\n2,0,x,0,0\n", r"line 2, column 3: 'x' is not a number$"),
        (
            "1,0,0,0,0\n2,0,1_49,0,0\n",
            r"line 2, column 3: '1_49' is not a number$",
        ),  # float() takes it
        (
            "label,a,label,c,d\n1,0,0,0,0\n",
            r"the header \(line 1\) names column 'label' more than once \(columns 1, 3\); give "
            r"each column its own name$",
        ),
        (
            "label,a,b,c,d\n1,0,0,0,0\n2,0,x,0,0\n",
            r"line 3, column 3 \('b'\): 'x' is not a number$",
        ),
        ("1,0,0,0,0\n2,0,,0,0\n", r"line 2, column 3: empty cell; every cell must be a number$"),
        ("1,0,0,0,0,\n", r"line 1, column 6: empty cell \(a trailing delimiter\?\); every cell"),
        (
            "1,0,0,0,0\n\n2,0,nan,0,0\n",
            r"line 3, column 3: pixel nan is not a number; pixels must be 0-255 whole numbers or 0-1 floats$",
        ),
        ("1,0,0,inf,0\n", r"line 1, column 4: pixel inf is infinite"),
        ("1,0,0,0,256\n", r"line 1, column 5: pixel 256 is above 255; pixels must be"),
        ("1,0,-3,0,0\n", r"line 1, column 3: pixel -3 is negative"),
        (
            "1,0,2.5,0,0\n",
            r"line 1, column 3: pixel 2.5 is not a whole number; with values above 1 the pixels are read as 0-255",
        ),
        (
            "1,0,0,0,0\n1.5,0,0,0,0\n",
            r"line 2, column 1: label 1.5 is not a whole number; labels must be class indices 0..K-1$",
        ),
        ("1,0,0,0,0\n-1,0,0,0,0\n", r"line 2, column 1: label -1 is negative"),
        (
            "p0,p1,p2,p3,y\n0,0,0,0,1\n",
            r"no label column 'label' in the header; columns: p0, p1, p2, p3, y; name the label column with labels_key \(--labels-key\)$",
        ),
        (
            "labels,p1,p2,p3,p4\n0,0,0,0,1\n",
            r"no label column 'label' in the header \(did you mean 'labels'\?\)",
        ),
        ("label,a,b\n1,0,0,0,0\n", r"the header \(line 1\) names 3 columns but the rows have 5$"),
        ("5\n6\n", r"1 column per row; expected a label column and pixel columns$"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", text)
    before = files(tmp_path)
    with pytest.raises(FormatError, match=r"bad\.csv: " + message) as err:
        read_csv(path)
    assert "\n" not in str(err.value)
    assert files(tmp_path) == before  # nothing written on failure


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="nope.csv: no such file$"):
        read_csv(tmp_path / "nope.csv")


def test_table_for_regression(tmp_path: Path) -> None:
    path = write(tmp_path / "houses.csv", "rooms,price,area\n3,100.5,70\n4,200,90.25\n")
    table = read_csv_table(path, target="price")
    assert table.feature_names == ("rooms", "area")
    np.testing.assert_array_equal(table.features, np.array([[3, 70], [4, 90.25]], np.float32))
    np.testing.assert_array_equal(table.targets, np.array([100.5, 200], np.float32))
    assert table.features.dtype == np.float32 and table.targets.dtype == np.float32
    features, targets, names = table  # a plain tuple too
    assert features is table.features and targets is table.targets and names == ("rooms", "area")


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        (
            "rooms,price\n3,1\n",
            "pirce",
            r"no column 'pirce' \(did you mean 'price'\?\); columns: rooms, price$",
        ),
        (
            "3,1\n4,2\n",
            "price",
            r"no header row; a table needs column names to find the target column 'price'$",
        ),
        (
            "rooms,price\n3,1\n4,cheap\n",
            "price",
            r"line 3, column 2 \('price'\): 'cheap' is not a number$",
        ),
        (
            "rooms,price\n3,1\n,2\n",
            "price",
            r"line 3, column 1 \('rooms'\): empty cell; every cell must be a number$",
        ),
        (
            "rooms,price\n3,1\nnan,2\n",
            "price",
            r"line 3, column 1 \('rooms'\): missing or infinite value \(nan\); fill or drop such rows first$",
        ),
        ("price\n3\n", "price", r"only the target column 'price'; no feature columns$"),
        (  # the second copy of the target would be read as a feature: the answer leaking in
            "a,price,price\n1,2,2\n",
            "price",
            r"the header \(line 1\) names column 'price' more than once \(columns 2, 3\)",
        ),
        (
            "a,price\n3,1,2\n",
            "price",
            r"the header \(line 1\) names 2 columns but the rows have 3$",
        ),
    ],
)
def test_table_errors(tmp_path: Path, text: str, target: str, message: str) -> None:
    path = write(tmp_path / "t.csv", text)
    with pytest.raises(FormatError, match=r"t\.csv: " + message):
        read_csv_table(path, target)
