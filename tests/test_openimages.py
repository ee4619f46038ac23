"""Open Images loader: hand-made box, class and size CSVs with known answers, and every error message."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from format_writers import OPENIMAGES_HEADER, png

import imbstat.data.openimages as openimages
from imbstat.data import BoxFilter, Reason, load
from imbstat.data.openimages import load_openimages
from imbstat.errors import ImbstatError

BOXES = [
    "img_b,xclick,/m/cat,1,0.1,0.5,0.2,0.6,0,0,0,0,0",  # line 2
    "img_a,xclick,/m/dog,1,0,1,0,1,0,0,1,0,0",  # line 3: the whole image, group-of
    "img_b,xclick,/m/dog,1,0.25,0.75,0.5,1,1,0,0,0,0",  # line 4
    "img_c,activemil,/m/cat,1,0.5,0.625,0.125,0.25,0,0,0,0,0",  # line 5
]
CLASSES = "/m/dog,Dog\n/m/bird,Bird\n/m/cat,Cat\n"


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)
    return folder / name


@pytest.fixture
def csvs(tmp_path: Path) -> tuple[Path, Path, Path]:
    boxes = _write(tmp_path, "boxes.csv", OPENIMAGES_HEADER + "\n" + "\n".join(BOXES) + "\n")
    classes = _write(tmp_path, "classes.csv", CLASSES)
    sizes = _write(tmp_path, "sizes.csv", "ImageID,Width,Height\nimg_a,640,480\nimg_b,200,100\nimg_c,800,400\n")
    return boxes, classes, sizes


def test_boxes_by_hand_with_sizes(csvs):
    boxes, classes, sizes = csvs
    ds = load_openimages(boxes, classes=classes, sizes=sizes)
    assert ds.format == "openimages"
    assert list(ds.images.image_id) == ["img_b", "img_a", "img_c"]  # order of first appearance
    assert ds.images.width.tolist() == [200, 640, 800]
    assert ds.images.height.tolist() == [100, 480, 400]
    assert ds.images.size_known.all()
    # all classes of the descriptions file, in file order, with their display names
    assert list(ds.categories.category_id) == ["/m/dog", "/m/bird", "/m/cat"]
    assert list(ds.categories.name) == ["Dog", "Bird", "Cat"]
    assert ds.boxes.image.tolist() == [0, 1, 0, 2]
    assert ds.boxes.category.tolist() == [2, 0, 0, 2]
    # by hand: xyxy = [XMin * W, YMin * H, XMax * W, YMax * H]
    expected = [
        [0.1 * 200, 0.2 * 100, 0.5 * 200, 0.6 * 100],  # 20, 20, 100, 60
        [0, 0, 640, 480],
        [50, 50, 150, 100],  # 0.25 * 200, 0.5 * 100, 0.75 * 200, 1 * 100
        [400, 50, 500, 100],  # 0.5 * 800, 0.125 * 400, 0.625 * 800, 0.25 * 400
    ]
    np.testing.assert_allclose(ds.boxes.xyxy, expected, rtol=1e-15)
    assert ds.boxes.group_of.tolist() == [False, True, False, False]
    assert len(ds.problems) == 0
    assert len(ds.counted_boxes()) == 4  # group-of kept by default
    assert len(ds.counted_boxes(BoxFilter(include_group_of=False))) == 3


def test_without_sizes_boxes_stay_normalised(csvs):
    boxes, classes, _ = csvs
    ds = load_openimages(boxes, classes=classes)
    assert not ds.images.size_known.any()
    assert ds.images.width.tolist() == [1, 1, 1]
    np.testing.assert_array_equal(ds.boxes.xyxy[0], [0.1, 0.2, 0.5, 0.6])  # XMin, YMin, XMax, YMax as read
    with pytest.raises(ImbstatError) as e:
        ds.require_sizes("anchor statistics")
    assert "unknown for 3 of 3 images" in str(e.value)
    assert "--sizes" in str(e.value)


def test_sizes_from_image_headers(csvs, tmp_path: Path):
    boxes, classes, _ = csvs
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "img_a.png").write_bytes(png(640, 480))
    (tmp_path / "images" / "img_c.PNG").write_bytes(png(8, 4))
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    ds = load_openimages(boxes, classes=classes, images=tmp_path / "images")
    assert ds.images.size_known.tolist() == [False, True, True]  # img_b has no file
    assert ds.images.width.tolist() == [1, 640, 8]
    np.testing.assert_allclose(ds.boxes.xyxy[3], [4, 0.5, 5, 1])  # by hand: 0.5 * 8, 0.125 * 4, 0.625 * 8, 0.25 * 4
    # load() passes images through
    assert load(boxes, classes=classes, images=tmp_path / "images").images.size_known.sum() == 2


def test_sizes_csv_without_header_and_partial(csvs, tmp_path: Path):
    boxes, classes, _ = csvs
    sizes = _write(tmp_path, "sizes2.csv", "img_c,800,400,extra\nimg_a,640.0,480\nimg_a,1,1\n")
    ds = load_openimages(boxes, classes=classes, sizes=sizes)
    assert ds.images.size_known.tolist() == [False, True, True]
    assert ds.images.width.tolist() == [1, 640, 800]  # the first row of a repeated ImageID wins


def test_invalid_size_excludes_the_image(csvs, tmp_path: Path):
    boxes, classes, _ = csvs
    sizes = _write(tmp_path, "sizes0.csv", "ImageID,Width,Height\nimg_a,0,480\nimg_b,200,100\nimg_c,800,400\n")
    ds = load_openimages(boxes, classes=classes, sizes=sizes)
    assert list(ds.images.image_id) == ["img_b", "img_c"]
    assert ds.problems.reasons() == [Reason.INVALID_IMAGE_SIZE, Reason.IMAGE_EXCLUDED]
    assert list(ds.problems.location) == [f"{sizes} (ImageID img_a)", "line 3"]
    assert ds.boxes.image.tolist() == [0, 0, 1]


def test_class_descriptions_with_header(csvs, tmp_path: Path):
    boxes, _, sizes = csvs
    classes = _write(tmp_path, "classes_h.csv", 'LabelName,DisplayName\n/m/dog,Dog\n/m/cat,"Cat, domestic"\n')
    ds = load_openimages(boxes, classes=classes, sizes=sizes)
    assert list(ds.categories.name) == ["Dog", "Cat, domestic"]
    assert ds.boxes.category.tolist() == [1, 0, 0, 1]


def test_without_classes_names_are_label_names(csvs):
    boxes, _, sizes = csvs
    ds = load_openimages(boxes, sizes=sizes)
    assert list(ds.categories.category_id) == ["/m/cat", "/m/dog"]  # sorted
    assert list(ds.categories.name) == ["/m/cat", "/m/dog"]
    assert ds.boxes.category.tolist() == [0, 1, 1, 0]


def test_label_missing_from_descriptions_is_unknown_category(csvs, tmp_path: Path):
    boxes, _, sizes = csvs
    classes = _write(tmp_path, "classes_dog.csv", "/m/dog,Dog\n")
    ds = load_openimages(boxes, classes=classes, sizes=sizes)
    assert ds.problems.reasons() == [Reason.UNKNOWN_CATEGORY] * 2
    assert list(ds.problems.location) == ["line 2", "line 5"]  # the two /m/cat rows
    assert len(ds.boxes) == 2


def test_empty_ids_and_ids_that_look_like_numbers(tmp_path: Path):
    rows = ["007,/m/a,0,1,0,1", "7,/m/a,0,1,0,1", ",/m/a,0,1,0,1", "7,,0,1,0,1", "NA,/m/a,nan,1,0,1", "7,/m/a,0,1"]
    boxes = _write(tmp_path, "b.csv", "ImageID,LabelName,XMin,XMax,YMin,YMax\n" + "\n".join(rows) + "\n")
    ds = load_openimages(boxes)
    assert list(ds.images.image_id) == ["007", "7", "NA"]  # strings, never parsed as numbers
    assert list(ds.categories.name) == ["/m/a"]
    # a short row (line 7) reads as missing coordinates
    assert ds.problems.reasons() == [Reason.UNKNOWN_IMAGE, Reason.UNKNOWN_CATEGORY] + [Reason.NAN_COORDINATE] * 2
    assert list(ds.problems.location) == ["line 4", "line 5", "line 6", "line 7"]
    assert ds.boxes.group_of.tolist() == [False, False]  # no IsGroupOf column: all False


def test_chunked_reading_gives_the_same_codes(csvs, monkeypatch: pytest.MonkeyPatch):
    boxes, classes, sizes = csvs
    whole = load_openimages(boxes, classes=classes, sizes=sizes)
    monkeypatch.setattr(openimages, "CHUNK_ROWS", 1)
    chunked = load_openimages(boxes, classes=classes, sizes=sizes)
    assert list(chunked.images.image_id) == list(whole.images.image_id)
    np.testing.assert_array_equal(chunked.boxes.image, whole.boxes.image)
    np.testing.assert_array_equal(chunked.boxes.category, whole.boxes.category)
    np.testing.assert_array_equal(chunked.boxes.xyxy, whole.boxes.xyxy)


def test_missing_columns(tmp_path: Path):
    boxes = _write(tmp_path, "b.csv", "ImageID,Source,LabelName,XMin,YMin\nx,y,z,0,0\n")
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes)
    assert str(e.value) == (
        f"{boxes} (line 1): missing columns XMax, YMax; expected an Open Images box CSV header with "
        "ImageID, LabelName, XMin, XMax, YMin, YMax"
    )


@pytest.mark.parametrize(
    ("rows", "position", "value"),
    [
        (["a,/m/a,0,1,0,1", "b,/m/a,0,1,0.5,abc"], "line 3, column YMax", "abc"),
        (["a,/m/a,0,1,0,1", "b,/m/a,0,1,oops,1", "c,/m/a,x,1,0,1"], "line 3, column YMin", "oops"),
        (["a,/m/a,0,1,0,1,yes"], "line 2, column IsGroupOf", "yes"),
    ],
)
def test_non_numeric_value_names_line_and_column(tmp_path: Path, rows, position, value):
    header = "ImageID,LabelName,XMin,XMax,YMin,YMax" + (",IsGroupOf" if "yes" in rows[0] else "")
    boxes = _write(tmp_path, "b.csv", header + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes)
    assert str(e.value) == f"{boxes} ({position}): expected a number, got {value!r}"


def test_malformed_csv_and_empty_file(tmp_path: Path):
    text = 'ImageID,LabelName,XMin,XMax,YMin,YMax\na,/m/a,0,1,0,1\nb,/m/a,0,1,0,1\nc,"/m/a,0,1,0,1\n'
    boxes = _write(tmp_path, "b.csv", text)
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes)
    assert str(e.value) == f"{boxes} (line 4): malformed CSV: EOF inside string; expected a closing quote"
    empty = _write(tmp_path, "empty.csv", "")
    with pytest.raises(ImbstatError, match="empty file; expected a CSV header line"):
        load_openimages(empty)
    with pytest.raises(ImbstatError, match=r"missing\.csv: no such file or directory; expected an Open Images box CSV"):
        load_openimages(tmp_path / "missing.csv")


def test_bad_class_descriptions(csvs, tmp_path: Path):
    boxes, _, _ = csvs
    bad = _write(tmp_path, "c1.csv", "/m/dog,Dog\n/m/cat,Cat,extra\n")
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, classes=bad)
    assert str(e.value) == f"{bad} (line 2): expected 2 fields 'LabelName,DisplayName', got 3"
    repeated = _write(tmp_path, "c2.csv", "/m/dog,Dog\n/m/cat,Cat\n/m/dog,Hound\n")
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, classes=repeated)
    assert str(e.value) == f"{repeated} (line 3): LabelName '/m/dog' repeats line 1; expected unique classes"


def test_bad_sizes_csv(csvs, tmp_path: Path):
    boxes, _, _ = csvs
    sizes = _write(tmp_path, "s.csv", "ImageID,Width,Height\nimg_a,640,480\nimg_b,wide,100\n")
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, sizes=sizes)
    assert str(e.value) == f"{sizes} (line 3, column Width): expected a number, got 'wide'"
    headerless = _write(tmp_path, "s2.csv", "img_a,640,480\nimg_b,200,\n")
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, sizes=headerless)
    assert str(e.value) == f"{headerless} (line 2, column Height): expected a number, got ''"
    wrong = _write(tmp_path, "s3.csv", "ImageID,W,H\nimg_a,640,480\n")
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, sizes=wrong)
    assert e.value.position == "line 1"
    assert "expected columns ImageID,Width,Height" in e.value.detail


# --- hostile and degenerate input (issue 10) ---


def test_locations_are_physical_lines(tmp_path: Path):
    text = (
        "ImageID,LabelName,XMin,XMax,YMin,YMax\n"  # line 1
        '"a\nb",/m/a,0.1,0.2,0.1,0.2\n'  # lines 2-3: a quoted id with a newline
        "c,/m/a,0.5,0.2,0.1,0.2\n"  # line 4: XMax < XMin
        "\n"  # line 5: blank, skipped by pandas
        "  \n"  # line 6: whitespace only, skipped alike
        "d,/m/a,0.1,0.2,0.3,0.3\n"  # line 7: YMax == YMin
        'e,"/m/\r\na",0.1,0.2,0.1,0.2\n'  # lines 8-9: CRLF inside quotes
        "f,/m/a,0.1,0.2,0.1,nan\n"  # line 10
    )
    boxes = _write(tmp_path, "b.csv", "")
    boxes.write_bytes(text.encode())
    ds = load_openimages(boxes)
    assert list(ds.images.image_id) == ["a\nb", "c", "d", "e", "f"]
    assert ds.problems.reasons() == [Reason.NON_POSITIVE_SIZE, Reason.NON_POSITIVE_SIZE, Reason.NAN_COORDINATE]
    assert list(ds.problems.location) == ["line 4", "line 7", "line 10"]  # were lines 3, 5 and 7
    # CRLF line ends (and a lone CR, a line end to pandas too) count once each
    boxes.write_bytes(b"ImageID,LabelName,XMin,XMax,YMin,YMax\r\na,/m/a,0,1,0,1\rb,/m/a,1,0,0,1\r\n")
    assert list(load_openimages(boxes).problems.location) == ["line 3"]


def test_errors_give_physical_lines(csvs, tmp_path: Path):
    boxes, _, _ = csvs
    bad = _write(tmp_path, "b.csv", 'ImageID,LabelName,XMin,XMax,YMin,YMax\n"a\nb",/m/a,0,1,0,1\n\nc,/m/a,0,1,0,x\n')
    with pytest.raises(ImbstatError) as e:
        load_openimages(bad)
    assert e.value.position == "line 5, column YMax"  # by hand: 1 header, 2-3 "a\nb", 4 blank, 5
    unclosed = _write(
        tmp_path, "u.csv", 'ImageID,LabelName,XMin,XMax,YMin,YMax\n"a\nb",/m/a,0,1,0,1\n\n"c,/m/a,0,1,0,1\n'
    )
    with pytest.raises(ImbstatError) as e:
        load_openimages(unclosed)
    assert str(e.value) == f"{unclosed} (line 5): malformed CSV: EOF inside string; expected a closing quote"
    sizes = _write(tmp_path, "s.csv", 'ImageID,Width,Height\n"img\na",640,480\n\nimg_b,wide,100\n')
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, sizes=sizes)
    assert e.value.position == "line 5, column Width"
    classes = _write(tmp_path, "c.csv", '/m/dog,"Dog\nor hound"\n/m/cat,Cat\n/m/dog,Hound\n')
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, classes=classes)
    assert str(e.value) == f"{classes} (line 4): LabelName '/m/dog' repeats line 1; expected unique classes"
    classes = _write(tmp_path, "c2.csv", '/m/dog,"Dog\nor hound"\n/m/cat,Cat,extra\n')
    with pytest.raises(ImbstatError, match=r"\(line 3\): expected 2 fields"):
        load_openimages(boxes, classes=classes)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("", "empty file; expected a header ImageID,Width,Height and one row per image"),
        ("\n\n", "empty file; expected a header ImageID,Width,Height and one row per image"),
        ("ImageID,Width,Height\n", "no rows after the header; expected one row ImageID,Width,Height per image"),
    ],
)
def test_sizes_file_without_rows_is_an_error(csvs, tmp_path: Path, text: str, detail: str):
    boxes, _, _ = csvs
    sizes = _write(tmp_path, "s.csv", text)
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, sizes=sizes)  # was: silently no sizes
    assert str(e.value) == f"{sizes}: {detail}"


@pytest.mark.parametrize("text", ["", "\n", "LabelName,DisplayName\n"])
def test_classes_file_without_rows_is_an_error(csvs, tmp_path: Path, text: str):
    boxes, _, _ = csvs
    classes = _write(tmp_path, "c.csv", text)
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes, classes=classes)  # was: every box an unknown_category
    assert str(e.value) == f"{classes}: no classes; expected rows LabelName,DisplayName (header optional)"


def test_huge_coordinates_are_counted_without_warnings(csvs, tmp_path: Path):
    _, _, sizes = csvs
    boxes = _write(
        tmp_path,
        "h.csv",
        "ImageID,LabelName,XMin,XMax,YMin,YMax\nimg_a,/m/a,0.5,1e308,0,1\nimg_a,/m/a,0,inf,0,1\nimg_a,/m/a,0,1,0,1\n",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "overflow encountered in multiply" leaked from 1e308 * 640
        ds = load_openimages(boxes, sizes=sizes)
    assert ds.problems.reasons() == [Reason.CLIPPED_TO_IMAGE, Reason.NAN_COORDINATE]
    assert list(ds.problems.location) == ["line 2", "line 3"]
    np.testing.assert_array_equal(ds.boxes.xyxy, [[320, 0, 640, 480], [0, 0, 640, 480]])  # by hand: 0.5 * 640


def test_a_column_given_twice_is_refused(tmp_path: Path):
    # pandas reads the first XMin and renames the second "XMin.1": which one holds the boxes is a guess
    text = "ImageID,LabelName,XMin,XMax,YMin,YMax,XMin\na,/m/a,0,1,0,1,0.5\n"
    boxes = _write(tmp_path, "b.csv", text)
    with pytest.raises(ImbstatError) as e:
        load_openimages(boxes)
    assert str(e.value) == f"{boxes} (line 1): column XMin given twice in the header; expected each column once"
    unused = _write(tmp_path, "c.csv", "ImageID,LabelName,XMin,XMax,YMin,YMax,Source,Source\na,/m/a,0,1,0,1,x,y\n")
    assert len(load_openimages(unused).boxes) == 1  # a column imbstat does not read may repeat
