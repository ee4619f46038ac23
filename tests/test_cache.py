"""The Parquet cache: same Dataset back, stale when the source or the options change."""

from __future__ import annotations

import json
import os

import numpy as np
from helpers import TINY_ANNOTATIONS, TINY_CATEGORIES, TINY_IMAGES, assert_same_dataset, coco_doc
from typer.testing import CliRunner

import imbstat
from imbstat.cli import app
from imbstat.data import cache as columnar_cache


def test_cache_round_trip_and_staleness(write_json):
    doc = coco_doc(TINY_IMAGES, [*TINY_ANNOTATIONS, (9, 1, [1, 1, 2, 2], 0)], TINY_CATEGORIES)  # one problem too
    doc["categories"][0]["frequency"] = "r"
    doc["annotations"][1]["area"] = 12.5  # the others have none: NaN
    path = write_json(doc)
    options = columnar_cache.load_options(path)
    parsed = imbstat.load(path, cache=True)
    assert columnar_cache.cache_dir(path).is_dir()
    cached = columnar_cache.read_cache(path, options)
    assert_same_dataset(cached, parsed, source=True)
    assert cached.boxes.area[1] == 12.5 and np.isnan(cached.boxes.area[[0, 2]]).all()
    assert cached.problems.counts() == {"unknown_image": 1}
    assert_same_dataset(imbstat.load(path, cache=True), parsed, source=True)  # load() finds it

    os.utime(path, ns=(1, 1))  # touched, same content: still valid by its hash
    assert columnar_cache.read_cache(path, options) is not None
    assert columnar_cache.read_cache(path, options | {"split": "val"}) is None  # other options

    doc["annotations"].pop()
    path.write_text(json.dumps(doc))  # changed content
    assert columnar_cache.read_cache(path, options) is None
    assert len(imbstat.load(path).problems) == 0  # parsed again, not the stale cache


def test_a_cache_of_the_schema_before_area_is_rebuilt(write_json, monkeypatch):
    path = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES))
    now = columnar_cache.CACHE_SCHEMA
    monkeypatch.setattr(columnar_cache, "CACHE_SCHEMA", 3)  # written by a release without Boxes.area
    imbstat.load(path, cache=True)
    monkeypatch.setattr(columnar_cache, "CACHE_SCHEMA", now)
    assert columnar_cache.read_cache(path, columnar_cache.load_options(path)) is None


def test_small_sources_are_not_cached_unless_asked(write_json):
    path = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES))
    imbstat.load(path)
    assert not columnar_cache.cache_dir(path).exists()  # below AUTO_CACHE_ABOVE
    imbstat.load(path, cache=False)
    assert not columnar_cache.cache_dir(path).exists()


def test_by_default_only_a_large_sources_cache_is_read(write_json, monkeypatch):
    path = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES))
    parsed = imbstat.load(path, cache=True)  # as `imbstat cache PATH` leaves it
    reads = []
    read_cache = columnar_cache.read_cache
    monkeypatch.setattr(columnar_cache, "read_cache", lambda *a: reads.append(a) or read_cache(*a))
    assert_same_dataset(imbstat.load(path), parsed, source=True)
    assert reads == []  # parsed: a small source parses faster than pyarrow imports
    monkeypatch.setattr(columnar_cache, "AUTO_CACHE_ABOVE", 0)  # as if the source were large
    assert_same_dataset(imbstat.load(path), parsed, source=True)
    assert len(reads) == 1


def test_folder_source_is_stale_when_a_file_changes(tmp_path):
    from format_writers import write_voc

    coco = tmp_path / "c.json"
    coco.write_text(json.dumps(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS[:3], TINY_CATEGORIES)))
    voc = tmp_path / "voc"
    write_voc(imbstat.load(coco), voc)
    imbstat.load(voc, cache=True)
    options = columnar_cache.load_options(voc)
    assert columnar_cache.read_cache(voc, options) is not None
    xml = next((voc / "Annotations").glob("*.xml"))
    xml.write_text(xml.read_text().replace("<difficult>0</difficult>", "<difficult>1</difficult>"))
    assert columnar_cache.read_cache(voc, options) is None


def test_read_only_source_folder_caches_in_the_user_cache(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    path = data / "instances.json"
    path.write_text(json.dumps(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES)))
    data.chmod(0o555)  # like ../shared/data: even root must not write there
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    try:
        folder = columnar_cache.cache_dir(path)
        assert folder.parent == tmp_path / "home-cache" / "imbstat"
        imbstat.load(path, cache=True)
        assert (folder / "meta.json").exists()
        assert [p.name for p in data.iterdir()] == ["instances.json"]
    finally:
        data.chmod(0o755)


def test_cache_command(write_json):
    path = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES))
    result = CliRunner().invoke(app, ["cache", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"cache written to {columnar_cache.cache_dir(path)}: parse ")
    assert (columnar_cache.cache_dir(path) / "boxes.parquet").exists()


def test_round_trip_in_small_row_groups_with_string_ids(tmp_path, monkeypatch):
    from format_writers import write_openimages

    coco = tmp_path / "c.json"
    coco.write_text(json.dumps(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES)))
    write_openimages(imbstat.load(coco), tmp_path / "oi")
    boxes_csv = tmp_path / "oi" / "boxes.csv"
    monkeypatch.setattr(columnar_cache, "_ROW_GROUP", 2)  # several row groups per table
    parsed = imbstat.load(boxes_csv, cache=True)
    assert parsed.images.image_id.dtype == object and len(parsed.boxes) > 2
    cached = columnar_cache.read_cache(boxes_csv, columnar_cache.load_options(boxes_csv))
    assert_same_dataset(cached, parsed, source=True)
    for column in (cached.boxes.xyxy, cached.boxes.image, cached.images.width):
        assert column.flags.writeable and column.flags.c_contiguous


# The cache is keyed on everything the load read (issue: stale numbers). Each case below served the
# old numbers before: the fingerprint was taken after parsing, and only of the source itself.
def _tiny_openimages(tmp_path):
    from format_writers import write_openimages

    coco = tmp_path / "c.json"
    coco.write_text(json.dumps(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS[:3], TINY_CATEGORIES)))
    folder = tmp_path / "oi"
    write_openimages(imbstat.load(coco), folder)
    return folder


def _fresh_equals_cached(path, **options) -> None:
    """A load through the cache gives what a fresh parse gives now."""
    assert_same_dataset(
        imbstat.load(path, cache=True, **options), imbstat.load(path, cache=False, **options), source=True
    )


def test_source_edited_while_it_is_parsed_makes_the_cache_stale(write_json, monkeypatch):
    from imbstat.data import coco

    path = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES))
    edited = coco_doc(TINY_IMAGES, TINY_ANNOTATIONS[:1], TINY_CATEGORIES)
    decode = coco.decode

    def edit_then_decode(raw, *args, **kwargs):
        os.utime(path, ns=(5, 5))
        path.write_text(json.dumps(edited))  # the edit lands after the bytes were read, before parsing ends
        return decode(raw, *args, **kwargs)

    monkeypatch.setattr(coco, "decode", edit_then_decode)
    first = imbstat.load(path, cache=True)
    monkeypatch.setattr(coco, "decode", decode)
    assert len(first.boxes) == 4  # what was read: a, b, c and the crowd box d
    again = imbstat.load(path, cache=True)
    assert len(again.boxes) == 1  # the edited file, not the cache of the old content


def test_sizes_and_classes_files_key_the_cache(tmp_path):
    folder = _tiny_openimages(tmp_path)
    boxes, sizes, classes = folder / "boxes.csv", folder / "sizes.csv", folder / "class-descriptions.csv"
    options = {"sizes": sizes, "classes": classes}
    first = imbstat.load(boxes, cache=True, **options)
    assert sorted(first.images.width.tolist()) == [100.0, 200.0]  # image 3 has no box: not in the box CSV
    assert sorted(first.categories.name.tolist()) == ["cat", "dog", "emu"]

    sizes.write_text(sizes.read_text().replace("2,200.0,", "2,100.0,"))  # image 2: 200x100 -> 100x100
    after = imbstat.load(boxes, cache=True, **options)
    assert sorted(after.images.width.tolist()) == [100.0, 100.0]
    _fresh_equals_cached(boxes, **options)

    classes.write_text(classes.read_text().replace(",dog", ",hound"))
    renamed = imbstat.load(boxes, cache=True, **options)
    assert sorted(renamed.categories.name.tolist()) == ["cat", "emu", "hound"]


def test_a_relative_sizes_path_from_another_folder_is_another_file(tmp_path, monkeypatch):
    folder = _tiny_openimages(tmp_path)
    boxes = folder / "boxes.csv"
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    original = (folder / "sizes.csv").read_text()
    (here / "sizes.csv").write_text(original)
    (there / "sizes.csv").write_text(original.replace("2,200.0,", "2,400.0,"))
    monkeypatch.chdir(here)
    assert max(imbstat.load(boxes, cache=True, sizes="sizes.csv").images.width) == 200.0
    monkeypatch.chdir(there)
    assert max(imbstat.load(boxes, cache=True, sizes="sizes.csv").images.width) == 400.0


def test_yolo_labels_behind_a_data_yaml_key_the_cache(tmp_path):
    from format_writers import write_yolo

    coco = tmp_path / "c.json"
    coco.write_text(json.dumps(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS[:3], TINY_CATEGORIES)))
    write_yolo(imbstat.load(coco), tmp_path / "yolo")
    data_yaml = tmp_path / "yolo" / "data.yaml"
    assert len(imbstat.load(data_yaml, cache=True).boxes) == 3
    label = sorted((tmp_path / "yolo" / "labels").rglob("*.txt"))[0]
    label.write_text(label.read_text() + "0 0.5 0.5 0.2 0.2\n")  # one more box
    assert len(imbstat.load(data_yaml, cache=True).boxes) == 4
    in_label = len(label.read_text().splitlines())
    label.unlink()  # its boxes go, and the folder listing changes
    _fresh_equals_cached(data_yaml)
    assert len(imbstat.load(data_yaml, cache=True).boxes) == 4 - in_label


def test_a_touched_input_with_the_same_content_keeps_the_cache(tmp_path):
    folder = _tiny_openimages(tmp_path)
    boxes, sizes = folder / "boxes.csv", folder / "sizes.csv"
    imbstat.load(boxes, cache=True, sizes=sizes)
    options = columnar_cache.load_options(boxes, imbstat.LoadOptions(sizes=sizes))
    os.utime(sizes, ns=(7, 7))
    os.utime(boxes, ns=(7, 7))
    assert columnar_cache.read_cache(boxes, options) is not None
    meta = json.loads((columnar_cache.cache_dir(boxes) / "meta.json").read_text())
    assert {entry[1] for entry in meta["inputs"]["files"].values()} == {7}  # no rehash next time
