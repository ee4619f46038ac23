"""Writers and loaders together: one hand-made COCO dataset written as VOC, Open Images and YOLO reads back the same."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from format_writers import write_coco, write_openimages, write_voc, write_yolo

from imbstat.data import Dataset, load
from imbstat.errors import ImbstatError

CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "human"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 7, "name": "dog", "supercategory": "animal"},
    {"id": 9, "name": "kite", "supercategory": "object"},
]
IMAGES = [
    {"id": 11, "file_name": "a.jpg", "width": 640, "height": 480},
    {"id": 12, "file_name": "b.jpg", "width": 500, "height": 375},
    {"id": 13, "file_name": "c.jpg", "width": 333, "height": 500},
    {"id": 14, "file_name": "d.jpg", "width": 1024, "height": 768},
    {"id": 15, "file_name": "e.jpg", "width": 300, "height": 200},
    {"id": 16, "file_name": "f.jpg", "width": 640, "height": 427},  # no boxes
]
# (image_id, category_id, [x, y, w, h]) with non-integer corners; one box touches the right and bottom edges.
# No box sits exactly on a histogram edge (e.g. w/h = 2): a normalised format moves such values by an ulp.
ANNOTATIONS = [
    (11, 1, [10.25, 20.5, 100.125, 200.75]),
    (11, 1, [300.1, 40.7, 50.3, 80.9]),
    (11, 3, [0.0, 0.0, 640.0, 480.0]),
    (11, 9, [500.5, 10.01, 20.2, 15.3]),
    (12, 7, [12.34, 56.78, 90.12, 34.56]),
    (12, 7, [1.1, 2.2, 3.3, 4.4]),
    (12, 1, [250.0, 100.0, 249.0, 275.0]),  # x2 = 499, y2 = 375: the bottom edge
    (12, 3, [100.0, 100.0, 0.5, 0.26]),
    (13, 9, [1.0 / 3, 2.0 / 3, 100.0 / 7, 200.0 / 9]),
    (13, 9, [50.5, 60.5, 70.5, 80.5]),
    (13, 1, [0.1, 0.2, 0.3, 0.4]),
    (14, 3, [123.456, 234.567, 345.678, 456.789]),
    (14, 3, [1000.5, 700.25, 23.5, 67.75]),  # x2 = 1024, y2 = 768: the bottom-right corner
    (14, 7, [512.0, 384.0, 1.5, 2.5]),
    (14, 1, [0.001, 0.002, 10.003, 20.004]),
    (14, 9, [800.8, 600.6, 100.1, 50.07]),
    (15, 7, [10.0, 10.0, 280.0, 180.0]),
    (15, 1, [99.9, 49.9, 0.2, 0.2]),
    (15, 3, [0.5, 0.5, 299.5, 199.5]),
]
CROWD = (11, 1, [200.0, 200.0, 100.0, 50.0])


@pytest.fixture
def coco_ds(tmp_path: Path) -> Dataset:
    annotations = [
        {"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "iscrowd": 0}
        for k, (i, c, b) in enumerate(ANNOTATIONS)
    ]
    annotations.append({"id": 100, "image_id": CROWD[0], "category_id": CROWD[1], "bbox": CROWD[2], "iscrowd": 1})
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": IMAGES, "categories": CATEGORIES, "annotations": annotations}))
    ds = load(path)
    assert len(ds.problems) == 0
    assert len(ds.boxes) == 20
    return ds


def _image_key(image_id) -> str:
    """The original COCO id behind each format's image id (YOLO prefixes its split folder)."""
    return str(image_id).removeprefix("all/")


def _table(ds: Dataset, keep: np.ndarray | None = None):
    """(image key, class name, xyxy) per box, sorted by key, name, then corners."""
    boxes = ds.boxes if keep is None else ds.boxes.select(keep)
    keys = np.asarray([_image_key(i) for i in ds.images.image_id])[boxes.image]
    names = ds.categories.name.astype(str)[boxes.category]
    order = np.lexsort((*boxes.xyxy.T[::-1], names, keys))
    return keys[order], names[order], boxes.xyxy[order]


def _per_class(ds: Dataset, keep: np.ndarray | None = None) -> tuple[dict[str, int], dict[str, int]]:
    """({name: instances}, {name: images containing it}) for the classes that have boxes."""
    boxes = ds.boxes if keep is None else ds.boxes.select(keep)
    k = len(ds.categories)
    instances = np.bincount(boxes.category, minlength=k)
    pairs = np.unique(boxes.image * k + boxes.category)
    images = np.bincount(pairs % k, minlength=k)
    names = ds.categories.name.astype(str)
    return (
        {n: int(c) for n, c in zip(names, instances, strict=True) if c},
        {n: int(c) for n, c in zip(names, images, strict=True) if c},
    )


def _assert_same_boxes(original: Dataset, keep: np.ndarray, loaded: Dataset) -> None:
    assert _per_class(loaded) == _per_class(original, keep)
    keys, names, xyxy = _table(original, keep)
    got_keys, got_names, got_xyxy = _table(loaded)
    assert got_keys.tolist() == keys.tolist()
    assert got_names.tolist() == names.tolist()
    # 1e-9 relative, and 1e-9 of the image side for corners at 0
    np.testing.assert_allclose(got_xyxy, xyxy, rtol=1e-9, atol=1e-9 * 1024)


def test_voc_roundtrip(coco_ds: Dataset, tmp_path: Path):
    assert write_voc(coco_ds, tmp_path / "voc") == 1  # the crowd box has no VOC equivalent
    loaded = load(tmp_path / "voc")
    assert loaded.format == "voc"
    _assert_same_boxes(coco_ds, ~coco_ds.boxes.iscrowd, loaded)
    assert loaded.num_images == 6  # f.jpg, without boxes, is an XML without <object>
    assert len(loaded.problems) == 0
    assert sorted(loaded.images.file_name) == [im["file_name"] for im in IMAGES]
    assert load(tmp_path / "voc", split="all").num_images == 6
    # by hand: x1 = 250.0 is written as xmin 251, a whole number without ".0"
    assert "<xmin>251</xmin>" in (tmp_path / "voc" / "Annotations" / "12.xml").read_text()


def test_openimages_roundtrip(coco_ds: Dataset, tmp_path: Path):
    folder = tmp_path / "oi"
    assert write_openimages(coco_ds, folder) == 1
    loaded = load(folder / "boxes.csv", classes=folder / "class-descriptions.csv", sizes=folder / "sizes.csv")
    assert loaded.format == "openimages"
    _assert_same_boxes(coco_ds, ~coco_ds.boxes.iscrowd, loaded)
    assert list(loaded.categories.name) == [c["name"] for c in CATEGORIES]  # every class, in order
    assert loaded.num_images == 5  # Open Images cannot hold an image without boxes
    assert len(loaded.problems) == 0
    # Without sizes the same boxes come back normalised.
    normalised = load(folder / "boxes.csv", classes=folder / "class-descriptions.csv")
    assert not normalised.images.size_known.any()
    scale = {str(im["id"]): (im["width"], im["height"]) for im in IMAGES}
    w, h = np.asarray([scale[i] for i in normalised.images.image_id], float).T
    b = normalised.boxes
    np.testing.assert_allclose(b.xyxy * np.stack([w, h, w, h], 1)[b.image], loaded.boxes.xyxy, rtol=1e-12)


def test_yolo_roundtrip(coco_ds: Dataset, tmp_path: Path):
    assert write_yolo(coco_ds, tmp_path / "yolo") == 1
    loaded = load(tmp_path / "yolo")
    assert loaded.format == "yolo"
    _assert_same_boxes(coco_ds, ~coco_ds.boxes.iscrowd, loaded)
    assert loaded.num_images == 6
    assert loaded.images.size_known.all()  # from the PNG headers
    assert len(loaded.problems) == 0  # boxes on the border come back on it, not clipped
    assert list(loaded.categories.name) == [c["name"] for c in CATEGORIES]
    assert not (tmp_path / "yolo" / "labels" / "all" / "16.txt").exists()  # no boxes, no label file


def test_written_png_is_a_valid_image(coco_ds: Dataset, tmp_path: Path):
    image = pytest.importorskip("PIL.Image")
    write_yolo(coco_ds, tmp_path / "yolo")
    with image.open(tmp_path / "yolo" / "images" / "all" / "13.png") as im:
        im.load()  # decodes IDAT: checks the zlib stream and the CRCs
        assert im.size == (333, 500)


def test_coco_roundtrip_keeps_crowd(coco_ds: Dataset, tmp_path: Path):
    assert write_coco(coco_ds, tmp_path / "out.json") == 0
    loaded = load(tmp_path / "out.json")
    everything = np.ones(len(coco_ds.boxes), bool)
    _assert_same_boxes(coco_ds, everything, loaded)
    assert loaded.boxes.iscrowd.sum() == 1
    assert loaded.categories.category_id.tolist() == [c["id"] for c in CATEGORIES]
    assert list(loaded.categories.supercategory) == [c["supercategory"] for c in CATEGORIES]


def test_difficult_survives_voc_only(tmp_path: Path):
    (tmp_path / "src" / "Annotations").mkdir(parents=True)
    obj = "<object><name>{}</name><difficult>{}</difficult><bndbox><xmin>{}</xmin><ymin>1</ymin><xmax>50</xmax><ymax>60</ymax></bndbox></object>"  # noqa: E501
    (tmp_path / "src" / "Annotations" / "x.xml").write_text(
        "<annotation><size><width>100</width><height>80</height></size>"
        + obj.format("cat", 1, 10.5)
        + obj.format("dog", 0, 20)
        + "</annotation>"
    )
    ds = load(tmp_path / "src")
    assert write_voc(ds, tmp_path / "voc") == 0
    again = load(tmp_path / "voc")
    assert again.boxes.difficult.tolist() == [True, False]
    np.testing.assert_array_equal(again.boxes.xyxy, ds.boxes.xyxy)  # by hand: 10.5 -> 9.5 -> 10.5 -> 9.5
    assert write_openimages(ds, tmp_path / "oi") == 1  # no difficult flag in Open Images
    assert write_yolo(ds, tmp_path / "yolo") == 1
    assert write_coco(ds, tmp_path / "c.json") == 1
    assert load(tmp_path / "yolo").boxes.category.tolist() == [1]  # dog only


def test_group_of_survives_openimages_only(tmp_path: Path):
    (tmp_path / "b.csv").write_text(
        "ImageID,LabelName,XMin,XMax,YMin,YMax,IsGroupOf\nq,/m/a,0.1,0.9,0.2,0.8,1\nq,/m/b,0.5,0.75,0.5,0.75,0\n"
    )
    (tmp_path / "s.csv").write_text("q,400,300\n")
    ds = load(tmp_path / "b.csv", sizes=tmp_path / "s.csv")
    assert write_openimages(ds, tmp_path / "oi") == 0
    again = load(tmp_path / "oi" / "boxes.csv", classes=tmp_path / "oi" / "class-descriptions.csv")
    assert again.boxes.group_of.tolist() == [True, False]
    assert write_voc(ds, tmp_path / "voc") == 1
    assert write_yolo(ds, tmp_path / "yolo") == 1


def test_writer_errors(coco_ds: Dataset, tmp_path: Path):
    (tmp_path / "b.csv").write_text("ImageID,LabelName,XMin,XMax,YMin,YMax\nq,/m/a,0.1,0.9,0.2,0.8\n")
    unsized = load(tmp_path / "b.csv")
    for writer in (write_coco, write_voc, write_yolo):
        with pytest.raises(ImbstatError, match="needs image sizes in pixels"):
            writer(unsized, tmp_path / "out")
    assert write_openimages(unsized, tmp_path / "oi") == 0  # normalised boxes need no sizes
    assert (tmp_path / "oi" / "sizes.csv").read_text() == "ImageID,Width,Height\n"

    half = dataclasses.replace(coco_ds.images, width=coco_ds.images.width + 0.5)
    with pytest.raises(ImbstatError, match=r"image 11 is 640\.5 x 480; YOLO reads sizes from image files"):
        write_yolo(dataclasses.replace(coco_ds, images=half), tmp_path / "y")
    same = dataclasses.replace(coco_ds.categories, name=np.asarray(["a", "a", "b", "c"], object))
    with pytest.raises(ImbstatError, match="category names repeat"):
        write_voc(dataclasses.replace(coco_ds, categories=same), tmp_path / "v")


def _statistics(ds: Dataset) -> dict:
    """The three dataset statistics, keyed by class name so that category order does not matter."""
    import imbstat

    classes = imbstat.class_distribution(ds)
    names = ds.categories.name.astype(str)
    scale = imbstat.scale_distribution(ds)
    location = imbstat.location_distribution(ds)
    return {
        "instances": {n: int(c) for n, c in zip(names, classes.instances, strict=True) if c},
        "images": {n: int(c) for n, c in zip(names, classes.images, strict=True) if c},
        "classes_per_image": classes.classes_per_image.counts[1:].tolist(),  # Open Images has no empty images
        "objects_per_image": classes.objects_per_image.counts[1:].tolist(),
        "scale": {k: v for k, v in scale.to_dict().items() if k != "scores"},
        "location": location.counts.tolist(),
        "location_per_class": {
            n: location.per_class[k].tolist() for k, n in enumerate(names) if location.per_class[k].any()
        },
    }


def test_every_format_gives_identical_statistics(coco_ds: Dataset, tmp_path: Path):
    plain = ~coco_ds.boxes.iscrowd
    expected = _statistics(coco_ds.select_images(np.ones(coco_ds.num_images, bool)))
    written = {
        "voc": (write_voc, lambda p: load(p)),
        "openimages": (
            write_openimages,
            lambda p: load(p / "boxes.csv", classes=p / "class-descriptions.csv", sizes=p / "sizes.csv"),
        ),
        "yolo": (write_yolo, lambda p: load(p / "data.yaml")),
    }
    for name, (write, read) in written.items():
        folder = tmp_path / name
        write(dataclasses.replace(coco_ds, boxes=coco_ds.boxes.select(plain)), folder)
        assert _statistics(read(folder)) == expected, name
