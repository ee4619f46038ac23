"""Pascal VOC loader: hand-made XML files with known answers, and every error message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imbstat.data import BoxFilter, Reason, load
from imbstat.data.voc import load_voc
from imbstat.errors import ImbstatError


def _obj(name: str, xmin, ymin, xmax, ymax, difficult: str | None = "0") -> str:
    diff = "" if difficult is None else f"<difficult>{difficult}</difficult>"
    return (
        f"<object><name>{name}</name><pose>Left</pose>{diff}"
        f"<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


def _xml(*objects: str, width="500", height="375", filename: str | None = "x.jpg") -> str:
    name = "" if filename is None else f"<filename>{filename}</filename>"
    return (
        f"<annotation><folder>VOC2007</folder>{name}"
        f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
        + "".join(objects)
        + "</annotation>"
    )


def _voc(root: Path, files: dict[str, str], splits: dict[str, str] | None = None) -> Path:
    (root / "Annotations").mkdir(parents=True)
    for stem, text in files.items():
        (root / "Annotations" / f"{stem}.xml").write_text(text)
    if splits:
        (root / "ImageSets" / "Main").mkdir(parents=True)
        for split, text in splits.items():
            (root / "ImageSets" / "Main" / f"{split}.txt").write_text(text)
    return root


@pytest.fixture
def voc2007(tmp_path: Path) -> Path:
    return _voc(
        tmp_path / "VOCdevkit" / "VOC2007",
        {
            "000005": _xml(
                _obj("chair", 263, 211, 324, 339),
                _obj("chair", 165.5, 264, 253, 372, difficult="1"),
                _obj("bottle", 1, 1, 500, 375, difficult=None),
                filename="000005.jpg",
            ),
            "000007": _xml(_obj("car", 141, 50, 500, 330), width="500", height="333", filename=None),
            "000009": _xml(width="353", height="500"),
        },
        {"train": "000005\n000009\n", "val": "000007\n\n"},
    )


def test_boxes_by_hand(voc2007: Path):
    ds = load_voc(voc2007)
    assert ds.format == "voc"
    assert list(ds.images.image_id) == ["000005", "000007", "000009"]  # file-name order
    # <filename> when given, else the stem + ".jpg"
    assert list(ds.images.file_name) == ["000005.jpg", "000007.jpg", "x.jpg"]
    assert ds.images.width.tolist() == [500, 500, 353]
    assert ds.images.height.tolist() == [375, 333, 500]
    assert ds.images.size_known.all()
    assert list(ds.categories.category_id) == ["bottle", "car", "chair"]  # sorted names
    assert list(ds.categories.name) == ["bottle", "car", "chair"]
    assert ds.boxes.image.tolist() == [0, 0, 0, 1]
    assert ds.boxes.category.tolist() == [2, 2, 0, 1]
    # by hand: x1 = xmin - 1, y1 = ymin - 1, x2 = xmax, y2 = ymax
    expected = [
        [262, 210, 324, 339],  # 263 -> 262, 211 -> 210
        [164.5, 263, 253, 372],  # 165.5 -> 164.5, 264 -> 263
        [0, 0, 500, 375],  # the whole 500x375 image: width xmax - xmin + 1 = 500
        [140, 49, 500, 330],
    ]
    np.testing.assert_array_equal(ds.boxes.xyxy, expected)
    assert ds.boxes.difficult.tolist() == [False, True, False, False]  # missing <difficult> -> 0
    assert len(ds.problems) == 0
    assert ds.counts()["difficult"] == 1
    assert ds.counts()["images_without_boxes"] == 1  # 000009 has no <object>
    assert len(ds.counted_boxes()) == 3  # difficult left out by default, as the VOC evaluation does
    assert len(ds.counted_boxes(BoxFilter(include_difficult=True))) == 4


def test_every_accepted_path_form(voc2007: Path):
    devkit = voc2007.parent
    for path in (devkit, voc2007, voc2007 / "Annotations"):
        assert load_voc(path).boxes.xyxy.shape == (4, 4), path
    single = load_voc(voc2007 / "Annotations" / "000007.xml")
    assert list(single.images.image_id) == ["000007"]
    np.testing.assert_array_equal(single.boxes.xyxy, [[140, 49, 500, 330]])
    # A plain folder of XML files, named anything.
    plain = voc2007.parent.parent / "xmls"
    plain.mkdir()
    (plain / "a.xml").write_text(_xml(_obj("dog", 11, 21, 30, 40)))
    np.testing.assert_array_equal(load_voc(plain).boxes.xyxy, [[10, 20, 30, 40]])  # by hand: 11 -> 10, 21 -> 20
    # load() detects the format from the folder
    assert load(devkit).format == "voc"
    assert load(devkit, split="val").num_images == 1


def test_several_datasets_in_a_devkit(voc2007: Path):
    _voc(voc2007.parent / "VOC2012", {"a": _xml()})
    with pytest.raises(ImbstatError) as e:
        load_voc(voc2007.parent)
    assert str(e.value) == f"{voc2007.parent}: several VOC datasets (VOC2007, VOC2012); pass one of these folders"


def test_split_restricts_images(voc2007: Path):
    train = load_voc(voc2007, split="train")
    assert list(train.images.image_id) == ["000005", "000009"]
    assert len(train.boxes) == 3
    val = load_voc(voc2007 / "Annotations", split="val")  # ImageSets is found beside Annotations
    assert list(val.images.image_id) == ["000007"]


def test_missing_split_file(voc2007: Path):
    with pytest.raises(ImbstatError) as e:
        load_voc(voc2007, split="trainval")
    listing = voc2007 / "ImageSets" / "Main" / "trainval.txt"
    assert e.value.path == str(listing)
    assert e.value.detail == "no such file or directory; expected a split file listing image ids"


def test_split_lists_an_id_without_xml(voc2007: Path):
    (voc2007 / "ImageSets" / "Main" / "test.txt").write_text("000005\n000042\n")
    with pytest.raises(ImbstatError) as e:
        load_voc(voc2007, split="test")
    listing = voc2007 / "ImageSets" / "Main" / "test.txt"
    expected_xml = voc2007 / "Annotations" / "000042.xml"
    assert str(e.value) == f"{listing} (line 2): image id '000042' has no annotation file; expected {expected_xml}"


def test_split_with_a_single_file(voc2007: Path):
    with pytest.raises(ImbstatError, match="needs a VOC folder with ImageSets/Main/"):
        load_voc(voc2007 / "Annotations" / "000005.xml", split="train")


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<annotation><filename>&lol3;</filename></annotation>
"""

EXTERNAL_ENTITY = """<?xml version="1.0"?>
<!DOCTYPE annotation [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<annotation><filename>&xxe;</filename></annotation>
"""


@pytest.mark.parametrize("text", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["billion-laughs", "external-entity"])
def test_entity_declarations_are_refused(tmp_path: Path, text: str):
    root = _voc(tmp_path / "VOC", {"000001": _xml(_obj("cat", 1, 1, 2, 2)), "000002": text})
    with pytest.raises(ImbstatError) as e:
        load_voc(root)
    assert e.value.path == str(root / "Annotations" / "000002.xml")
    assert e.value.detail.startswith("refused: XML entity declarations are not allowed")


def test_malformed_xml_names_line_and_column(tmp_path: Path):
    root = _voc(tmp_path / "VOC", {"000001": "<annotation>\n  <size><width>3</size>\n</annotation>"})
    with pytest.raises(ImbstatError) as e:
        load_voc(root)
    # by hand: in "  <size><width>3</size>" expat points at the name of the mismatched </size>,
    # 0-based column 18 -> column 19 as editors count
    assert str(e.value) == f"{root / 'Annotations' / '000001.xml'} (line 2, column 19): malformed XML: mismatched tag"


def test_wrong_root_element(tmp_path: Path):
    root = _voc(tmp_path / "VOC", {"a": "<svg/>"})
    with pytest.raises(ImbstatError, match=r"root element is <svg>; expected a VOC <annotation>"):
        load_voc(root)


@pytest.mark.parametrize(
    ("second", "position", "detail"),
    [
        (_obj("dog", "abc", 1, 2, 2), "object 2, bndbox/xmin", "expected a number, got 'abc'"),
        (_obj("dog", 1, 1, 2, " 7x "), "object 2, bndbox/ymax", "expected a number, got '7x'"),
        (_obj("dog", 1, 1, 2, 2, difficult="yes"), "object 2, difficult", "expected a number, got 'yes'"),
        (_obj("", 1, 1, 2, 2), "object 2, name", "empty element; expected the class name"),
        (_obj(" \n ", 1, 1, 2, 2), "object 2, name", "empty element; expected the class name"),
        (
            "<object><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>",
            "object 2, name",
            "missing element; expected the class name",
        ),
        ("<object><name>dog</name></object>", "object 2, bndbox", "missing element; expected the box corners"),
        (
            "<object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax></bndbox></object>",
            "object 2, bndbox/ymax",
            "missing element; expected a number",
        ),
    ],
)
def test_bad_element_names_file_object_and_element(tmp_path: Path, second: str, position: str, detail: str):
    root = _voc(tmp_path / "VOC", {"000005": _xml(_obj("cat", 1, 1, 2, 2), second)})
    with pytest.raises(ImbstatError) as e:
        load_voc(root)
    assert str(e.value) == f"{root / 'Annotations' / '000005.xml'} ({position}): {detail}"


def test_non_numeric_size_is_an_error(tmp_path: Path):
    root = _voc(tmp_path / "VOC", {"000005": _xml(width="wide")})
    with pytest.raises(ImbstatError) as e:
        load_voc(root)
    assert str(e.value) == f"{root / 'Annotations' / '000005.xml'} (size/width): expected a number, got 'wide'"


def test_invalid_size_excludes_the_image(tmp_path: Path):
    root = _voc(
        tmp_path / "VOC",
        {
            "a": _xml(_obj("cat", 1, 1, 10, 10), width="0"),
            "b": "<annotation><filename>b.jpg</filename>" + _obj("cat", 1, 1, 10, 10) + "</annotation>",
            "c": _xml(_obj("dog", 1, 1, 10, 10)),
        },
    )
    ds = load_voc(root)
    assert list(ds.images.image_id) == ["c"]
    assert ds.boxes.image.tolist() == [0]
    assert [r.key for r in ds.problems.reasons()] == ["invalid_image_size"] * 2 + ["image_excluded"] * 2
    assert list(ds.problems.location) == [
        "Annotations/a.xml",
        "Annotations/b.xml",
        "Annotations/a.xml (object 1)",
        "Annotations/b.xml (object 1)",
    ]
    assert list(ds.problems.detail[:2]) == ["width=0 height=375", "width=missing height=missing"]


def test_bad_boxes_are_reported_with_their_object(tmp_path: Path):
    root = _voc(
        tmp_path / "VOC",
        {
            "000005": _xml(
                _obj("cat", 11, 11, 20, 20),
                _obj("cat", 30, 11, 20, 20),  # xmax < xmin
                _obj("cat", 491, 1, 510, 20),  # past the right edge (500): clipped
                width="500",
            )
        },
    )
    ds = load_voc(root)
    assert ds.problems.reasons() == [Reason.NON_POSITIVE_SIZE, Reason.CLIPPED_TO_IMAGE]
    assert list(ds.problems.location) == ["Annotations/000005.xml (object 2)", "Annotations/000005.xml (object 3)"]
    # by hand: xmin 491 -> x1 490; x2 510 clipped to 500
    np.testing.assert_array_equal(ds.boxes.xyxy, [[10, 10, 20, 20], [490, 0, 500, 20]])


def test_no_annotations(tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImbstatError) as e:
        load_voc(tmp_path / "empty")
    assert e.value.detail.startswith("no annotations found")
    with pytest.raises(ImbstatError, match="no such file or directory"):
        load_voc(tmp_path / "missing")


# --- hostile and degenerate input (issue 10) ---

TWO_BOXES = (
    "<annotation><filename>a.jpg</filename><size><width>100</width><height>80</height></size>"
    + _obj("NAME", 1, 1, 10, 10)
    + "\n"
    + _obj("dog", 11, 21, 40, 50)
    + "</annotation>"
)


@pytest.mark.parametrize(
    ("declared", "codec", "bom", "name"),
    [
        ("UTF-16", "utf-16-le", b"\xff\xfe", "cat"),  # the reported file: declaration and BOM
        ("UTF-16", "utf-16-be", b"\xfe\xff", "cat"),
        ("UTF-16", "utf-16-le", b"", "cat"),  # no BOM: expat tells UTF-16 from "<\0"
        ("UTF-16LE", "utf-16-le", b"", "cat"),
        (None, "utf-16-le", b"\xff\xfe", "cat"),  # no declaration: the BOM says it
        ("ISO-8859-1", "latin-1", b"", "chat noir \u00e9"),
        ("windows-1252", "cp1252", b"", "\u20ac"),
        ("UTF-8", "utf-8", b"\xef\xbb\xbf", "\u732b"),
        ("Shift_JIS", "shift_jis", b"", "\u732b"),  # expat decodes no multi-byte encoding but UTF-8/16: ValueError
        ("EUC-JP", "euc_jp", b"", "\u732b"),
        ("GBK", "gbk", b"", "\u732b"),
        ("UTF-32", "utf-32", b"", "\u732b"),  # Python's utf-32 writes the BOM; expat knows no UTF-32
    ],
)
def test_xml_in_other_encodings_counts_exactly(tmp_path: Path, declared: str | None, codec: str, bom: bytes, name: str):
    head = "" if declared is None else f'<?xml version="1.0" encoding="{declared}"?>\n'
    (tmp_path / "a.xml").write_bytes(bom + (head + TWO_BOXES.replace("NAME", name)).encode(codec))
    ds = load_voc(tmp_path / "a.xml")
    assert len(ds.boxes) == 2 and len(ds.problems) == 0  # reported as 4 boxes for a UTF-16 file
    assert sorted(ds.categories.name) == sorted([name, "dog"])
    np.testing.assert_array_equal(ds.boxes.xyxy, [[0, 0, 10, 10], [10, 20, 40, 50]])  # by hand: xmin - 1, ymin - 1


@pytest.mark.parametrize(
    ("data", "position", "detail"),
    [
        # declares UTF-8 (or nothing: UTF-8), holds latin-1: the first byte that is not UTF-8
        (
            '<?xml version="1.0" encoding="UTF-8"?>\n<annotation><filename>caf\u00e9</filename></annotation>'.encode(
                "latin-1"
            ),
            "byte 64",  # by hand (0-based): 38 + 1 bytes of declaration, then "<annotation><filename>caf" is 25
            "not UTF-8 text (invalid continuation byte); expected the encoding the XML declaration names "
            "(UTF-8 without one)",
        ),
        (
            "<annotation><filename>caf\u00e9</filename></annotation>".encode("latin-1"),
            "byte 25",
            "not UTF-8 text (invalid continuation byte); expected the encoding the XML declaration names "
            "(UTF-8 without one)",
        ),
        (
            '<?xml version="1.0" encoding="Shift_JIS"?>\n<annotation>\xff\xff</annotation>'.encode("latin-1"),
            "byte 55",  # by hand (0-based): 42 + 1 bytes of declaration, then "<annotation>" is 12
            "not Shift_JIS text (illegal multibyte sequence); expected the encoding the XML declaration names",
        ),
        (
            b'<?xml version="1.0" encoding="x-klingon"?>\n<annotation/>',
            "line 1",
            "unknown encoding 'x-klingon' in the XML declaration; expected UTF-8, UTF-16 or another encoding "
            "Python knows",
        ),
        # declares UTF-16, holds UTF-8: expat's own words
        (
            b'<?xml version="1.0" encoding="UTF-16"?>\n<annotation/>',
            "line 1, column 31",
            "malformed XML: encoding specified in XML declaration is incorrect",
        ),
    ],
)
def test_a_declaration_that_lies_is_one_line(tmp_path: Path, data: bytes, position: str, detail: str):
    (tmp_path / "a.xml").write_bytes(data)
    with pytest.raises(ImbstatError) as e:
        load_voc(tmp_path / "a.xml")
    assert (e.value.path, e.value.position, e.value.detail) == (str(tmp_path / "a.xml"), position, detail)


BOX = "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox>"


@pytest.mark.parametrize(
    ("inside", "position", "detail"),
    [
        (
            "<size><width>100</width><width>50</width><height>80</height></size><object><name>a</name>"
            + BOX
            + "</object>",
            "size/width",
            "<width> given 2 times; expected one",
        ),
        (
            "<size><width>100</width><height>80</height></size><size><width>5</width><height>5</height></size>",
            "size",
            "<size> given 2 times; expected one",
        ),
        (
            "<size><width>100</width><height>80</height><height>80</height></size>",
            "size/height",
            "<height> given 2 times; expected one",
        ),
        (
            "<size><width>100</width><height>80</height></size><object><name>a</name><name>b</name>"
            + BOX
            + "</object>",
            "object 1, name",
            "<name> given 2 times; expected one",
        ),
        (
            "<size><width>100</width><height>80</height></size><object><name>a</name>" + BOX + BOX + "</object>",
            "object 1, bndbox",
            "<bndbox> given 2 times; expected one",
        ),
        (
            "<size><width>100</width><height>80</height></size><object><name>a</name>"
            "<bndbox><xmin>1</xmin><xmin>5</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>",
            "object 1, bndbox/xmin",
            "<xmin> given 2 times; expected one",
        ),
        (
            "<size><width>100</width><height>80</height></size><object><name>a</name>"
            "<difficult>0</difficult><difficult>1</difficult>" + BOX + "</object>",
            "object 1, difficult",
            "<difficult> given 2 times; expected one",
        ),
        (
            "<size><width>100</width><height>80</height></size><object><name>a</name>"
            "<difficult>nan</difficult>" + BOX + "</object>",
            "object 1, difficult",
            "expected 0 or 1, got 'nan'",
        ),
        (
            "<size><width>100</width><height>80</height></size><object><name><b>a</b></name>" + BOX + "</object>",
            "object 1, name",
            "empty element; expected the class name",
        ),
    ],
)
def test_an_element_given_twice_is_one_line(tmp_path: Path, inside: str, position: str, detail: str):
    (tmp_path / "a.xml").write_text(f"<annotation><filename>a.jpg</filename>{inside}</annotation>")
    with pytest.raises(ImbstatError) as e:
        load_voc(tmp_path / "a.xml")  # the first was taken silently
    assert str(e.value) == f"{tmp_path / 'a.xml'} ({position}): {detail}"


def test_split_file_that_is_not_utf8_is_one_line(voc2007: Path):
    (voc2007 / "ImageSets" / "Main" / "train.txt").write_bytes("000005\n".encode("utf-16"))
    with pytest.raises(ImbstatError) as e:
        load_voc(voc2007, split="train")
    assert str(e.value) == (
        f"{voc2007 / 'ImageSets' / 'Main' / 'train.txt'} (byte 0): not UTF-8 text (invalid start byte); "
        "expected a split file listing image ids"
    )
