"""YOLO loader: hand-made Ultralytics layouts with known answers, and every error message."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from format_writers import png

from imbstat.data import Reason, load
from imbstat.data.yolo import load_yolo
from imbstat.errors import ImbstatError
from imbstat.stats.scale import scale_distribution


def _image(path: Path, width: int, height: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png(width, height))


def _labels(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """images/{train,val} and labels/{train,val}, Ultralytics style, with a data YAML."""
    root = tmp_path / "ds"
    _image(root / "images/train/a.png", 200, 100)
    _labels(root / "labels/train/a.txt", "0 0.5 0.5 0.5 0.2\n\n2 0.25 0.75 0.5 0.5\n")
    _image(root / "images/train/b.png", 40, 80)  # no label file: an image without boxes
    _labels(root / "labels/train/orphan.txt", "1 0.5 0.5 1 1\n")  # no image: size unknown
    _image(root / "images/val/c.png", 64, 32)
    _labels(root / "labels/val/c.txt", "1 0.5 0.5 0.25 0.5")  # no final newline
    (root / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [cat, dog, bird]\n")
    return root


def test_boxes_by_hand(dataset: Path):
    ds = load_yolo(dataset / "data.yaml", split="train")
    assert ds.format == "yolo"
    assert list(ds.images.image_id) == ["train/a", "train/b", "train/orphan"]  # images first, then orphan labels
    assert list(ds.images.file_name) == ["images/train/a.png", "images/train/b.png", ""]
    assert ds.images.width.tolist() == [200, 40, 1]
    assert ds.images.height.tolist() == [100, 80, 1]
    assert ds.images.size_known.tolist() == [True, True, False]
    assert ds.categories.category_id.tolist() == [0, 1, 2]
    assert list(ds.categories.name) == ["cat", "dog", "bird"]
    assert ds.boxes.image.tolist() == [0, 0, 2]
    assert ds.boxes.category.tolist() == [0, 2, 1]
    # by hand: x1 = (cx - w/2) * W, y1 = (cy - h/2) * H, x2 = (cx + w/2) * W, y2 = (cy + h/2) * H
    expected = [
        [50, 40, 150, 60],  # (0.5 -+ 0.25) * 200, (0.5 -+ 0.1) * 100
        [0, 50, 100, 100],  # (0.25 -+ 0.25) * 200, (0.75 -+ 0.25) * 100
        [0, 0, 1, 1],  # size unknown: normalised
    ]
    np.testing.assert_allclose(ds.boxes.xyxy, expected, rtol=1e-15, atol=1e-13)
    assert ds.problems.reasons() == [Reason.UNLABELLED_FILE]
    assert list(ds.problems.location) == ["labels/train/orphan.txt"]
    assert ds.counts()["images_without_boxes"] == 1


def test_split_none_reads_every_split(dataset: Path):
    ds = load_yolo(dataset / "data.yaml")
    assert list(ds.images.image_id) == ["train/a", "train/b", "train/orphan", "val/c"]
    np.testing.assert_allclose(ds.boxes.xyxy[-1], [24, 8, 40, 24])  # by hand: (0.5 -+ 0.125) * 64, (0.5 -+ 0.25) * 32
    # The folder holding the YAML works as well, and load() detects YOLO from it.
    assert load_yolo(dataset, split="val").num_images == 1
    assert load(dataset / "data.yaml", split="val").format == "yolo"


def test_a_folder_listed_by_two_splits_counts_once(dataset: Path):
    (dataset / "data.yaml").write_text("train: [images/train, images/val]\nval: images/train\nnames: [a, b, c]\n")
    ds = load_yolo(dataset / "data.yaml")
    assert list(ds.images.image_id) == ["train/a", "train/b", "train/orphan", "val/c"]
    assert len(ds.problems) == 1  # only the orphan label


def test_dict_names_and_nc(dataset: Path):
    (dataset / "data.yaml").write_text("train: images/train\nnc: 3\nnames:\n  0: cat\n  2: bird\n  1: dog\n")
    ds = load_yolo(dataset / "data.yaml", split="train")
    assert ds.categories.category_id.tolist() == [0, 1, 2]
    assert list(ds.categories.name) == ["cat", "dog", "bird"]
    (dataset / "data.yaml").write_text("train: images/train\nnc: 3\n")
    assert list(load_yolo(dataset / "data.yaml").categories.name) == ["0", "1", "2"]


def test_class_not_in_names_is_unknown_category(dataset: Path):
    (dataset / "data.yaml").write_text("train: images/train\nnames: {0: cat, 1: dog}\n")
    ds = load_yolo(dataset / "data.yaml")
    # class 2 (bird) of a.txt, written on line 3 after a blank line
    assert ds.problems.reasons() == [Reason.UNLABELLED_FILE, Reason.UNKNOWN_CATEGORY]
    assert list(ds.problems.location) == ["labels/train/orphan.txt", "labels/train/a.txt (line 3)"]
    assert len(ds.boxes) == 2


def test_yaml_path_key_and_txt_list(tmp_path: Path, dataset: Path):
    (tmp_path / "cfg").mkdir()
    (dataset / "val.txt").write_text("./images/val/c.png\nimages/train/a.png\n\n")
    # path: is relative to the YAML's folder; the .txt list's entries to the list's folder
    (tmp_path / "cfg" / "data.yml").write_text("path: ../ds\nval: val.txt\nnames: [cat, dog, bird]\n")
    ds = load_yolo(tmp_path / "cfg" / "data.yml")
    assert list(ds.images.image_id) == ["val/c", "train/a"]
    assert ds.boxes.image.tolist() == [0, 1, 1]


def test_bare_labels_folder_names_are_indices(dataset: Path):
    ds = load_yolo(dataset / "labels")  # no YAML: the sibling images/ folder gives sizes
    assert list(ds.images.image_id) == ["train/a", "train/b", "val/c", "train/orphan"]
    assert ds.categories.category_id.tolist() == [0, 1, 2]  # 0..max seen
    assert list(ds.categories.name) == ["0", "1", "2"]
    assert ds.images.size_known.tolist() == [True, True, True, False]
    assert list(ds.problems.location) == ["labels/train/orphan.txt"]

    (dataset / "data.yaml").unlink()
    assert load_yolo(dataset, split="val").images.image_id.tolist() == ["val/c"]  # labels/<split>/

    plain = dataset / "labels" / "train"
    (plain / "classes.txt").write_text("cat\ndog\nbird\nfish\n")  # as LabelImg writes it
    ds = load_yolo(plain)
    assert list(ds.images.image_id) == ["a", "orphan"]
    assert list(ds.categories.name) == ["cat", "dog", "bird", "fish"]
    assert not ds.images.size_known.any()
    assert len(ds.problems) == 0  # no images folder at all: unknown sizes are expected, not a problem
    ds = load_yolo(plain, images=dataset / "images" / "train")
    assert list(ds.images.image_id) == ["a", "b", "orphan"]
    assert ds.images.size_known.tolist() == [True, True, False]


def test_box_touching_the_border_is_not_clipped(tmp_path: Path):
    _image(tmp_path / "images" / "x.png", 640, 480)
    # 0.9 + 0.1 / 2 ... rounds just past 1 in float64 without the snap
    _labels(tmp_path / "labels" / "x.txt", "0 0.95 0.5 0.1 1.0\n0 0.3 0.7 0.6 0.6\n")
    ds = load_yolo(tmp_path / "labels")
    assert len(ds.problems) == 0
    np.testing.assert_allclose(ds.boxes.xyxy, [[576, 0, 640, 480], [0, 192, 384, 480]], rtol=1e-12)


@pytest.mark.parametrize(
    ("text", "line", "detail"),
    [
        ("0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.1 0.1 0.9\n", 2, "expected 5 values 'class cx cy w h', got 6"),
        ("0 0.5 0.5 0.1 0.1\n\n1 0.1 0.2 0.3 0.1 0.2 0.3\n", 3, "expected 5 values 'class cx cy w h', got 7"),
        ("0 0.5 0.5 0.1\n1 0.5 0.5 0.1 0.1 0.1\n", 1, "expected 5 values 'class cx cy w h', got 4"),
        ("0 0.5 0.5 0.1 0.1\n1 0.5 abc 0.1 0.1\n", 2, "expected a number, got 'abc'"),
        ("1.5 0.5 0.5 0.1 0.1\n", 1, "expected a whole-number class index, got '1.5'"),
        ("nan 0.5 0.5 0.1 0.1\n", 1, "expected a whole-number class index, got 'nan'"),
    ],
)
def test_bad_label_line_names_file_and_line(tmp_path: Path, text: str, line: int, detail: str):
    _labels(tmp_path / "labels" / "x.txt", text)
    with pytest.raises(ImbstatError) as e:
        load_yolo(tmp_path / "labels")
    assert str(e.value) == f"{tmp_path / 'labels' / 'x.txt'} (line {line}): {detail}"


def test_yaml_errors(dataset: Path):
    data = dataset / "data.yaml"
    cases = [
        # PyYAML finds the unclosed "[" at the ':' after "names" (line 2, column 6)
        ("train: [images/train\nnames: [a]\n", "line 2, column 6", "malformed YAML: expected ',' or ']', but got ':'"),
        ("- a\n- b\n", None, "expected a mapping with names and train/val/test"),
        ("train: images/train\nnames: cat\n", "names", "expected a list of class names or a mapping {index: name}"),
        ("train: images/train\nnames: {x: cat}\n", "names", "expected whole-number class indices as keys"),
        ("train: images/train\nnc: 2\nnames: [a, b, c]\n", "nc", "nc is 2 but names has 3 entries"),
        ("names: [a]\n", None, "no split listed; expected train, val or test"),
        ("train: images/nowhere\nnames: [a]\n", "train", "'images/nowhere' is not a folder or a .txt list"),
        ("train: {a: 1}\nnames: [a]\n", "train", "is not a folder or a .txt list of images"),
    ]
    for text, position, detail in cases:
        data.write_text(text)
        with pytest.raises(ImbstatError) as e:
            load_yolo(data)
        assert e.value.path == str(data), text
        assert e.value.position == position, text
        assert detail in e.value.detail, text
    data.write_text("train: images/train\nnames: [a]\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(data, split="test")
    assert str(e.value) == f"{data}: split 'test' is not in the data YAML; expected one of train"
    with pytest.raises(ImbstatError, match="pass images only with a folder of labels"):
        load_yolo(data, images=dataset / "images")


def test_folder_errors(tmp_path: Path, dataset: Path):
    (dataset / "other.yaml").write_text("names: [a]\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(dataset)
    assert str(e.value) == f"{dataset}: several YAML files (data.yaml, other.yaml); pass one of them"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImbstatError, match="no annotations found"):
        load_yolo(tmp_path / "empty")
    with pytest.raises(ImbstatError, match="no folder for split 'test'"):
        load_yolo(dataset / "labels", split="test")
    (dataset / "val.txt").write_text("images/val/c.png\nimages/val/missing.png\n")
    (dataset / "data.yaml").write_text("val: val.txt\nnames: [a, b, c]\n")
    (dataset / "other.yaml").unlink()
    with pytest.raises(ImbstatError) as e:
        load_yolo(dataset)
    assert str(e.value) == (
        f"{dataset / 'val.txt'} (line 2): image not found; expected {dataset / 'images' / 'val' / 'missing.png'}"
    )


# --- hostile and degenerate input (issue 10) ---


def test_class_index_beyond_the_unnamed_limit_is_refused(tmp_path: Path):
    # Without names the classes are 0..max seen: 100000 would make 100,001 classes (10,000,000 made 7.4 GB).
    _labels(tmp_path / "labels" / "x.txt", "0 0.5 0.5 0.2 0.2\n\n100000 0.5 0.5 0.2 0.2\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(tmp_path / "labels")
    assert str(e.value) == (
        f"{tmp_path / 'labels' / 'x.txt'} (line 3): class index 100000 without class names would make 100001 "
        "classes; expected an index below 65536, or the names in a data YAML or classes.txt"
    )
    # With names, an index they lack is only a box of an unknown class.
    (tmp_path / "labels" / "classes.txt").write_text("cat\n")
    ds = load_yolo(tmp_path / "labels")
    assert list(ds.categories.name) == ["cat"]
    assert ds.problems.reasons() == [Reason.UNKNOWN_CATEGORY]
    assert list(ds.problems.location) == ["labels/x.txt (line 3)"]


@pytest.mark.parametrize(
    ("word", "category"),
    [
        ("1e20", None),  # whole, but far beyond int64 after 2^63: cast warned and gave a garbage index
        ("9223372036854775807", None),  # 2^63 - 1 rounds up to 2^63 in float64
        ("-1", None),
        ("-0", 0),
        ("3.0e0", 3),  # Ultralytics reads classes as floats: 3.0e0 is class 3
    ],
)
def test_odd_class_indices_with_names(tmp_path: Path, word: str, category: int | None):
    _labels(tmp_path / "labels" / "x.txt", f"1 0.5 0.5 0.2 0.2\n{word} 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels" / "classes.txt").write_text("a\nb\nc\nd\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value encountered in cast"
        ds = load_yolo(tmp_path / "labels")
    if category is None:
        assert ds.problems.reasons() == [Reason.UNKNOWN_CATEGORY]
        assert list(ds.problems.location) == ["labels/x.txt (line 2)"]
        assert ds.boxes.category.tolist() == [1]
    else:
        assert len(ds.problems) == 0
        assert ds.boxes.category.tolist() == [1, category]


def test_odd_class_indices_without_names(tmp_path: Path):
    _labels(tmp_path / "labels" / "x.txt", "1 0.5 0.5 0.2 0.2\n-1 0.5 0.5 0.2 0.2\n")
    ds = load_yolo(tmp_path / "labels")
    assert ds.categories.category_id.tolist() == [0, 1]  # 0..max seen; -1 is no class
    assert ds.problems.reasons() == [Reason.UNKNOWN_CATEGORY]
    _labels(tmp_path / "labels" / "x.txt", "1 0.5 0.5 0.2 0.2\n1e20 0.5 0.5 0.2 0.2\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImbstatError) as e:
            load_yolo(tmp_path / "labels")
    assert e.value.position == "line 2"
    assert e.value.detail.startswith("class index 1e+20 without class names would make")


@pytest.mark.parametrize("word", ["inf", "-inf", "Infinity"])
def test_infinite_class_is_not_a_whole_number(tmp_path: Path, word: str):
    _labels(tmp_path / "labels" / "x.txt", f"0 0.5 0.5 0.1 0.1\n{word} 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(tmp_path / "labels")
    label = tmp_path / "labels" / "x.txt"
    assert str(e.value) == f"{label} (line 2): expected a whole-number class index, got {word!r}"


def test_non_finite_and_huge_coordinates_are_counted_without_warnings(tmp_path: Path):
    _image(tmp_path / "images" / "x.png", 640, 480)
    lines = [
        "0 nan 0.5 0.1 0.1",  # line 1: NaN centre
        "0 -inf 0.5 inf 0.1",  # line 2: -inf + inf is NaN
        "0 1.7e308 0.5 1.7e308 0.1",  # line 3: cx + w/2 overflows to inf
        "0 0.5 0.5 1e308 0.1",  # line 4: finite, but * 640 overflows: clipped to the image
        "0 0.5 0.5 0.5 0.5",  # line 5: fine
    ]
    _labels(tmp_path / "labels" / "x.txt", "\n".join(lines) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "overflow encountered" / "invalid value encountered"
        ds = load_yolo(tmp_path / "labels")
    assert ds.problems.reasons() == [Reason.NAN_COORDINATE] * 3 + [Reason.CLIPPED_TO_IMAGE]
    assert list(ds.problems.location) == [f"labels/x.txt (line {n})" for n in (1, 2, 3, 4)]
    # by hand: line 4 spans the whole width once clipped; line 5 is (0.5 -+ 0.25) * (640, 480)
    np.testing.assert_allclose(ds.boxes.xyxy, [[0, 216, 640, 264], [160, 120, 480, 360]])


ALIAS_BOMB = """\
a: &a [x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
train: images/train
names: *h
"""


def test_yaml_alias_bomb_is_refused(dataset: Path):
    data = dataset / "data.yaml"
    data.write_text(ALIAS_BOMB)  # names alone would print as 9^8 = 43M strings
    with pytest.raises(ImbstatError) as e:
        load_yolo(data)
    # by hand: the first alias, "*a", follows "b: &b [" (7 columns) on line 2
    assert str(e.value) == (
        f"{data} (line 2, column 8): refused: YAML alias '*a'; expected a plain data YAML without anchors and aliases"
    )
    data.write_text("base: &base images/train\ntrain: *base\nnames: [a]\n")  # a harmless alias is refused alike
    with pytest.raises(ImbstatError, match=r"\(line 2, column 8\): refused: YAML alias '\*base'"):
        load_yolo(data)


def test_a_yaml_key_given_twice_is_refused(dataset: Path):
    data = dataset / "data.yaml"
    # PyYAML kept the last `names` silently: two classes would read as one
    data.write_text("train: images/train\nnames: [cat, dog]\nnames: [cat]\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(data)
    assert str(e.value) == (
        f"{data} (line 3, column 1): refused: key 'names' given twice in one mapping; "
        "expected a plain data YAML with each key once"
    )
    data.write_text("train: images/train\nnames: {0: cat, 1: dog, 0: emu}\n")  # by hand: the second 0 at column 25
    with pytest.raises(ImbstatError, match=r"\(line 2, column 25\): refused: key 0 given twice"):
        load_yolo(data)


@pytest.mark.parametrize(
    ("open_", "close", "column"),
    [
        # by hand: "extra: " is 7 columns; the document's mapping is level 1, so the 100th "[" is level 101
        ("[", "]", 7 + 99 + 1),
        # a mapping's key is a level below it: the key "a" of the 99th "{" is level 101
        ("{a: ", "}", 7 + 98 * 4 + 1 + 1),
    ],
)
def test_deeply_nested_yaml_is_refused(dataset: Path, open_: str, close: str, column: int):
    data = dataset / "data.yaml"
    data.write_text("train: images/train\nnames: [a]\nextra: " + open_ * 5000 + close * 5000 + "\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(data)  # was RecursionError
    assert e.value.path == str(data)
    assert e.value.position == f"line 3, column {column}"
    assert e.value.detail == "refused: YAML nested deeper than 100 levels; expected a plain data YAML"
    data.write_text("train: images/train\nnames: [a]\nextra: " + open_ * 98 + close * 98 + "\n")
    assert load_yolo(data).num_images == 3  # 100 levels: accepted


def test_yaml_that_is_not_utf8_is_one_line(dataset: Path):
    data = dataset / "data.yaml"
    data.write_bytes(b"train: images/train\nnames: [\xff]\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(data)
    assert str(e.value) == f"{data} (byte 28): not UTF-8 text (invalid start byte); expected an Ultralytics data YAML"


KEYS = "expected whole-number class indices as keys, 0..2147483647"


@pytest.mark.parametrize(
    ("text", "position", "detail"),
    [
        ("train: images/train\nnc: 10000000000\n", "nc", "nc is 10000000000; expected a whole number 0..65536"),
        ("train: images/train\nnc: true\n", "nc", "nc is True; expected a whole number 0..65536"),
        ("train: images/train\nnames: {100000000000000000000: a}\n", "names", KEYS),
        ("train: images/train\nnames: {-1: a}\n", "names", KEYS),
        ("train: images/train\nnames: {.inf: a}\n", "names", KEYS),
        ("train: images/train\nnames: {1.5: a}\n", "names", KEYS),
    ],
)
def test_yaml_class_counts_and_indices_are_bounded(dataset: Path, text: str, position: str, detail: str):
    data = dataset / "data.yaml"
    data.write_text(text)
    with pytest.raises(ImbstatError) as e:
        load_yolo(data)
    assert (e.value.path, e.value.position) == (str(data), position)
    assert detail in e.value.detail


def test_unreadable_classes_txt_and_image_list_are_one_line(tmp_path: Path, dataset: Path):
    _labels(tmp_path / "labels" / "x.txt", "0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels" / "classes.txt").write_bytes(b"cat\n\xfe\n")
    with pytest.raises(ImbstatError) as e:
        load_yolo(tmp_path / "labels")
    assert str(e.value) == (
        f"{tmp_path / 'labels' / 'classes.txt'} (byte 4): not UTF-8 text (invalid start byte); expected class names"
    )
    (tmp_path / "labels" / "classes.txt").write_bytes(b"\xef\xbb\xbfcat\n\xfe\n")  # the BOM counts in the offset
    with pytest.raises(ImbstatError, match=r"classes\.txt \(byte 7\): not UTF-8 text"):
        load_yolo(tmp_path / "labels")
    (tmp_path / "labels" / "classes.txt").write_bytes(b"\xef\xbb\xbfcat\n")  # a BOM alone is dropped
    assert list(load_yolo(tmp_path / "labels").categories.name) == ["cat"]
    (dataset / "val.txt").write_bytes(b"images/val/c.png\n\xfe\n")
    (dataset / "data.yaml").write_text("val: val.txt\nnames: [a, b, c]\n")
    with pytest.raises(ImbstatError, match=r"val\.txt \(byte 17\): not UTF-8 text"):
        load_yolo(dataset)


def test_anchor_hint_fits_the_source(dataset: Path):
    # The orphan label file has no image: its size is unknown.
    ds = load_yolo(dataset / "data.yaml")
    with pytest.raises(ImbstatError) as e:
        ds.require_sizes("anchor statistics")
    assert "--sizes" not in e.value.detail and "--images" not in e.value.detail  # load_yolo refuses both here
    hint = "expected an image for each label file (images/x.jpg for labels/x.txt) whose header gives its size"
    assert e.value.detail == f"anchor statistics needs image sizes in pixels, unknown for 1 of 4 images; {hint}"
    assert scale_distribution(ds).missing.endswith(f"unknown for 1 images; {hint}")  # the scale note alike
    with pytest.raises(ImbstatError) as e:
        load_yolo(dataset / "labels" / "train").require_sizes("anchor statistics")
    assert e.value.detail == (
        "anchor statistics needs image sizes in pixels, unknown for 2 of 2 images; "
        "pass --images DIR (the images the label files mirror), or keep images/ beside labels/"
    )
