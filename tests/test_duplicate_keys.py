"""Keys given twice in a COCO document: every root array is read, a record keeps its last value, each repeat counted.

Each document is loaded whole and streamed in blocks of 7 and 64 bytes: both paths must give the same
Dataset and the same problems. Positions are byte offsets found in the text by hand (str.index).
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
from helpers import assert_same_dataset, run

import imbstat.data.json_keys as json_keys
import imbstat.data.json_scan as json_scan
from imbstat import ImbstatError
from imbstat.data.coco import load_coco
from imbstat.data.problems import Reason

IMAGES = '[{"id":1,"width":100,"height":100},{"id":2,"width":50,"height":50}]'
CATEGORIES = '[{"id":1,"name":"a"},{"id":2,"name":"b"}]'


def ann(i: int, image: int, category: int = 1, bbox: str = "[0,0,10,10]", more: str = "") -> str:
    return f'{{"id":{i},"image_id":{image},"category_id":{category},"bbox":{bbox}{more}}}'


def doc(annotations: str = f"[{ann(1, 1)},{ann(2, 2)}]", images: str = IMAGES, categories: str = CATEGORIES) -> str:
    return f'{{"images":{images},"annotations":{annotations},"categories":{categories}}}'


def load_both(write_json, text: str):
    """The whole-file load, checked equal to the streamed ones (blocks of 7 and 64 bytes)."""
    json.loads(text)  # the test's own document is valid JSON
    path = write_json(text)
    whole = load_coco(path, stream=False)
    for block in (7, 64):
        assert_same_dataset(whole, load_coco(path, stream=True, block_bytes=block))
        streamed = load_coco(path, stream=True, block_bytes=block)
        assert list(streamed.problems.detail) == list(whole.problems.detail)
    return whole


def problems(ds) -> list[tuple[str, str, str]]:
    found = ds.problems
    return list(zip([r.key for r in found.reasons()], found.location, found.detail, strict=True))


def again(key: str, text: str, at: int, root: bool = False) -> str:
    return f'key "{key}" again at byte {at}; ' + ("every array is read" if root else "its last value is used")


def test_annotations_twice_the_second_empty_keeps_the_first(write_json):
    text = doc()[:-1] + ',"annotations":[]}'
    ds = load_both(write_json, text)
    assert len(ds.boxes) == 2  # both boxes of the first array (the decoder alone kept the empty one: 0)
    at = text.rindex("[]")
    assert problems(ds) == [("duplicate_key", "annotations", again("annotations", text, at, root=True))]


def test_annotations_twice_both_read_in_file_order(write_json):
    text = doc()[:-1] + f',"annotations":[{ann(3, 7)},{ann(4, 2, bbox="[5,5,10,10]")}]}}'
    ds = load_both(write_json, text)
    # 2 + 2 boxes, one on the unknown image 7: its index counts on from the first array
    assert len(ds.boxes) == 3
    np.testing.assert_array_equal(ds.boxes.xyxy[2], [5, 5, 15, 15])
    at = text.index("[", text.index('"annotations"', text.index('"categories"')))
    assert problems(ds) == [
        ("duplicate_key", "annotations", again("annotations", text, at, root=True)),
        ("unknown_image", "annotations[2] (id 3)", "x1=0 y1=0 x2=10 y2=10"),
    ]


def test_images_twice(write_json):
    text = doc(images='[{"id":1,"width":100,"height":100}]')[:-1] + ',"images":[{"id":2,"width":50,"height":50}]}'
    ds = load_both(write_json, text)
    assert ds.images.image_id.tolist() == [1, 2] and len(ds.boxes) == 2
    assert ds.boxes.image.tolist() == [0, 1]
    at = text.rindex("[{")
    assert problems(ds) == [("duplicate_key", "images", again("images", text, at, root=True))]


def test_categories_twice(write_json):
    text = doc(categories='[{"id":1,"name":"a"}]')[:-1] + ',"categories":[{"id":2,"name":"b"}]}'
    ds = load_both(write_json, text)
    assert ds.categories.name.tolist() == ["a", "b"] and len(ds.boxes) == 2
    at = text.rindex("[{")
    assert problems(ds) == [("duplicate_key", "categories", again("categories", text, at, root=True))]


def test_bbox_twice_in_an_annotation_keeps_the_last(write_json):
    first = ann(1, 1, bbox="[0,0,10,10]", more=',"bbox":[0,0,20,30]')
    text = doc(f"[{first},{ann(2, 2)}]")
    ds = load_both(write_json, text)
    np.testing.assert_array_equal(ds.boxes.xyxy[0], [0, 0, 20, 30])
    at = text.index('"bbox":[0,0,20,30]')
    assert problems(ds) == [("duplicate_key", "annotations[0]", again("bbox", text, at))]


def test_id_twice_in_an_image(write_json):
    text = doc(images='[{"id":1,"width":100,"height":100,"id":3},{"id":2,"width":50,"height":50}]')
    ds = load_both(write_json, text)
    assert ds.images.image_id.tolist() == [3, 2]  # the last id: image 1 is gone, its box too
    assert len(ds.boxes) == 1
    at = text.index('"id":3')
    assert problems(ds) == [
        ("duplicate_key", "images[0]", again("id", text, at)),
        ("unknown_image", "annotations[0] (id 1)", "x1=0 y1=0 x2=10 y2=10"),
    ]


def test_name_twice_in_a_category(write_json):
    text = doc(categories='[{"id":1,"name":"a"},{"id":2,"name":"b","supercategory":"s","name":"z"}]')
    ds = load_both(write_json, text)
    assert ds.categories.name.tolist() == ["a", "z"]
    assert problems(ds) == [("duplicate_key", "categories[1]", again("name", text, text.index('"name":"z"')))]


def test_repeats_in_values_the_loader_skips_are_no_problem(write_json):
    nested = ',"segmentation":{"counts":[1],"counts":[2],"bbox":1,"bbox":2}'
    text = doc(f"[{ann(1, 1, more=nested)},{ann(2, 2)}]")[:-1]
    text += ',"info":{"images":1,"images":[2],"annotations":{"bbox":1,"bbox":2}},"licenses":[{"id":1,"id":2}]}'
    ds = load_both(write_json, text)
    assert len(ds.boxes) == 2 and problems(ds) == []


def test_keys_with_escaped_quotes_are_other_keys(write_json):
    # "bbox\"" and "x\"bbox" are keys of their own; so is the root key "x\"annotations"
    more = r',"bbox\"":[1],"x\"bbox":[2],"\"bbox\"":3'
    text = doc(f"[{ann(1, 1, more=more)},{ann(2, 2)}]")[:-1] + r',"x\"annotations":[' + ann(3, 1) + "]}"
    ds = load_both(write_json, text)
    assert len(ds.boxes) == 2 and problems(ds) == []


def test_a_key_spelled_with_escapes_is_the_same_key(write_json):
    first = ann(1, 1, more=r',"bb\u006fx":[0,0,5,5]')
    text = doc(f"[{first},{ann(2, 2)}]")[:-1]
    text += r',"annotation\u0073":[' + ann(3, 2) + "]}"
    ds = load_both(write_json, text)
    np.testing.assert_array_equal(ds.boxes.xyxy[0], [0, 0, 5, 5])  # bb\u006fx is bbox
    assert len(ds.boxes) == 3
    at = text.index(r'"bb\u006fx"')
    root = text.index("[", text.index(r'"annotation\u0073"'))
    assert problems(ds) == [
        ("duplicate_key", "annotations[0]", again("bbox", text, at)),
        ("duplicate_key", "annotations", again("annotations", text, root, root=True)),
    ]


def test_names_as_values_and_blanks_around_colons(write_json):
    # "bbox" as a value, a category named "annotations", a file name that looks like a key
    images = '[{"id":1,"width":100,"height":100,"file_name":"\\"images\\": ["},{"id":2,"width":50,"height":50}]'
    annotations = "[" + ann(1, 1, more=',"note":"bbox","n":["bbox","id"]') + f",{ann(2, 2)}]"
    clean = doc(annotations, images, '[{"id":1,"name":"annotations"},{"id":2,"name":"bbox"}]')
    ds = load_both(write_json, clean)
    assert len(ds.boxes) == 2 and problems(ds) == []
    assert ds.images.file_name.tolist() == ['"images": [', ""]

    spaced = doc("[" + ann(1, 1, more=' ,\n "bbox" \n:\t[0,0,5,5] ') + f" , {ann(2, 2)}]")
    ds = load_both(write_json, spaced)
    at = spaced.index('"bbox" \n')
    assert problems(ds) == [("duplicate_key", "annotations[0]", again("bbox", spaced, at))]


def test_optional_fields_given_twice_where_others_lack_them(write_json):
    # iscrowd twice in one annotation and absent from the other: as many "iscrowd" keys as annotations
    crowd = ann(1, 1, more=',"iscrowd":1,"iscrowd":0')
    bare = ann(2, 2).replace('"id":2,', "")
    text = doc(f"[{crowd},{bare}]")
    ds = load_both(write_json, text)
    assert ds.boxes.iscrowd.tolist() == [False, False]
    assert problems(ds) == [("duplicate_key", "annotations[0]", again("iscrowd", text, text.index('"iscrowd":0')))]


def test_area_given_twice_keeps_the_last(write_json):
    # area is read (eval sorts GTs by it): given twice, as any field the loader reads, it keeps its last value
    twice = ann(1, 1, more=',"area":1,"area":2')
    text = doc(f"[{twice},{ann(2, 2)}]")
    ds = load_both(write_json, text)
    assert ds.boxes.area[0] == 2.0 and np.isnan(ds.boxes.area[1])
    assert problems(ds) == [("duplicate_key", "annotations[0]", again("area", text, text.index('"area":2')))]


def test_many_records_one_repeat_deep_in(write_json, monkeypatch):
    # the key census in blocks of 256 bytes; "images" and "annotations" also name keys in info
    monkeypatch.setattr(json_scan, "_BLOCK", 256)
    anns = [ann(i, 1 + i % 2, more=',"iscrowd":0' if i % 3 else "") for i in range(1, 120)]
    anns[100] = ann(101, 2, more=',"file_name":"x","id":999')
    info = '"info":{"images":1,"annotations":{"bbox":[1],"bbox":[2]}},'
    text = "{" + info + doc("[" + ",".join(anns) + "]")[1:]
    ds = load_both(write_json, text)
    assert len(ds.boxes) == 119
    assert problems(ds) == [("duplicate_key", "annotations[100]", again("id", text, text.index('"id":999')))]


def test_a_clean_file_is_cleared_without_the_exact_scan(write_json, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the exact scan ran")

    monkeypatch.setattr(json_scan, "_BLOCK", 256)
    anns = ",".join(ann(i, 1 + i % 2, more=',"iscrowd":0,"segmentation":[[1,2]]') for i in range(1, 60))
    info = '{"info":{"description":"x"},"licenses":[{"id":1,"name":"l"}],'
    text = info + doc(f"[{anns}]", categories='[{"id":1,"name":"a","supercategory":"s"},{"id":2,"name":"b"}]')[1:]
    path = write_json(text)
    expected = load_coco(path, stream=False)
    monkeypatch.setattr(json_keys, "scan_keys", fail)
    assert_same_dataset(load_coco(path, stream=False), expected)
    assert_same_dataset(load_coco(path, stream=True, block_bytes=300), expected)
    assert len(expected.boxes) == 59 and problems(expected) == []


def test_counted_as_a_warning_by_validate(write_json):
    text = doc()[:-1] + ',"annotations":[]}'
    path = write_json(text)
    result = run("validate", path)
    assert result.exit_code == 0  # a warning: nothing excluded
    line = f'{path}: annotations: warning: duplicate_key (kept) [key "annotations" again at byte {text.rindex("[]")}'
    assert result.stdout.splitlines()[0] == line + "; every array is read]"
    assert json.loads(run("info", path, "--json", "-").stdout)["dataset"]["invalid"] == {"duplicate_key": 1}
    assert Reason.DUPLICATE_KEY.severity == "warning"


# --- the scan against a plain recursive reading of small random documents --------------------------------------

_KINDS = {
    "images": ["id", "width", "height", "file_name"],
    "annotations": ["image_id", "category_id", "bbox", "iscrowd", "id"],
    "categories": ["id", "name", "supercategory", "frequency"],
}
_NAMES = sorted({*_KINDS, *(f for fields in _KINDS.values() for f in fields)})
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_BLANK = re.compile(rb"[ \t\r\n]*")
_SCALAR = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null")


def _reference(buf: bytes) -> list[tuple[str, int, str, int]]:
    """(array, index, key, position) of each repeat, by a recursive walk of the tokens."""
    found, count = [], {}

    def value(i: int, keys: list[str] | None, where: tuple[str, int] | None) -> int:
        i = _BLANK.match(buf, i).end()
        if buf[i : i + 1] == b"{":
            return members(i, keys, where)
        if buf[i : i + 1] == b"[":
            i = _BLANK.match(buf, i + 1).end()
            while buf[i : i + 1] != b"]":
                i = _BLANK.match(buf, value(i, None, None)).end()
                i += buf[i : i + 1] == b","
            return i + 1
        return (_STRING.match(buf, i) or _SCALAR.match(buf, i)).end()

    def members(i: int, keys: list[str] | None, where: tuple[str, int] | None) -> int:
        seen, i = set(), _BLANK.match(buf, i + 1).end()
        while buf[i : i + 1] != b"}":
            token = _STRING.match(buf, i)
            key, at = json.loads(token.group()), i
            i = _BLANK.match(buf, token.end()).end() + 1  # past ":"
            if keys is not None and key in keys:
                array, index = where or (key, -1)
                if key in seen:
                    found.append((array, index, key, at if where else _BLANK.match(buf, i).end()))
                seen.add(key)
            if where is None and keys is not None and key in _KINDS:  # a root array: its records
                i = _BLANK.match(buf, i).end() + 1
                while buf[_BLANK.match(buf, i).end()] != ord("]"):
                    i = _BLANK.match(buf, i).end()
                    i = _BLANK.match(buf, members(i, _KINDS[key], (key, count.get(key, 0)))).end()
                    count[key] = count.get(key, 0) + 1
                    i += buf[i : i + 1] == b","
                i = _BLANK.match(buf, i).end() + 1
            else:
                i = value(i, None, None)
            i = _BLANK.match(buf, i).end()
            i += buf[i : i + 1] == b","
            i = _BLANK.match(buf, i).end()
        return i + 1

    members(_BLANK.match(buf, 0).end(), list(_KINDS), None)
    return sorted(found, key=lambda f: f[3])


def _random_doc(r: random.Random) -> bytes:
    tricky = ["a{b", "c]d", 'q"x', "s\\", '\\"', '"bbox": [', "}]}", "bbox", "images", ":", ""]

    def string(s: str) -> str:
        if s in _NAMES and r.random() < 0.2:  # spelled with escapes
            return '"' + "".join(f"\\u{ord(c):04x}" if r.random() < 0.4 else c for c in s) + '"'
        return json.dumps(s, ensure_ascii=r.random() < 0.5)

    def blank() -> str:
        return r.choice(["", "", " ", "\n  "])

    def value(depth: int) -> str:
        c = r.random()
        if depth < 3 and c < 0.2:
            return "[" + ",".join(blank() + value(depth + 1) for _ in range(r.randint(0, 3))) + "]"
        if depth < 3 and c < 0.35:
            return obj([*_NAMES, "x"], depth + 1)
        return r.choice([string(r.choice(tricky)), str(r.randint(-5, 99)), "1.5e3", "null", "true"])

    def obj(keys: list[str], depth: int, first: str | None = None) -> str:
        items = [(k, value(depth)) for k in ([first] if first else []) + r.choices(keys, k=r.randint(0, 4))]
        return "{" + ",".join(f"{blank()}{string(k)}{blank()}:{blank()}{v}" for k, v in items) + blank() + "}"

    roots = [*_KINDS, "info", "licenses", *r.choices([*_KINDS], k=r.randint(0, 1))]
    r.shuffle(roots)
    parts = []
    for key in roots:
        if key in _KINDS:  # records always hold their first (required) field
            records = [obj([*_KINDS[key], "x"], 1, _KINDS[key][0]) for _ in range(r.randint(0, 4))]
            parts.append(f"{string(key)}:[{','.join(records)}]")
        else:
            parts.append(f"{string(key)}:{blank()}{value(0)}")
    return ("{" + ",".join(parts) + "}").encode()


@pytest.mark.parametrize("block", [pytest.param(4, marks=pytest.mark.slow), 13, 4096])
def test_scan_matches_a_recursive_reading(monkeypatch, block):
    monkeypatch.setattr(json_scan, "_BLOCK", block)
    for seed in range(40):
        buf = _random_doc(random.Random(seed))
        loaded = json.loads(buf)  # the decoder's view: the last of each key
        present = {
            key: [len(loaded.get(key, []))] + [sum(f in rec for rec in loaded.get(key, [])) for f in fields[1:]]
            for key, fields in _KINDS.items()
        }
        repeats, arrays = json_keys.document_repeats(buf, _KINDS, present)
        expected = _reference(buf)
        assert [(x.array, x.index, x.key, x.position) for x in repeats] == expected, (seed, buf)
        assert (arrays is not None) == any(index < 0 for _, index, _, _ in expected)


def test_an_error_in_a_repeated_array_names_the_element_as_streamed(write_json):
    # the bad element is the first of the second copy: element 2 of the annotations, in both paths
    text = doc()[:-1] + f',"annotations":[{ann(3, 1, bbox="[0,0,1]")}]}}'
    path = write_json(text)
    message = f"{path} ($.annotations[2].bbox): Expected 'array' of length 4"
    for stream in (False, True):
        with pytest.raises(ImbstatError) as info:
            load_coco(path, stream=stream, block_bytes=64)
        assert str(info.value) == message


@pytest.mark.parametrize(
    "head, boxes",
    [
        (r'"annotation\u0073":', 1),  # the decoder reads "annotations"
        (r'"x\"annotations":', 0),  # another key, though it ends like one
        ('"annotations"' + " " * 5000 + ":", 1),  # blanks past the streamed read's context before the colon
        ('"annotations":' + "\n" * 5000, 1),  # and after it
    ],
    ids=["escaped name", "escaped quote", "blanks before colon", "blanks after colon"],
)
def test_the_streamed_read_finds_the_root_keys_the_decoder_finds(write_json, head, boxes):
    text = f'{{"images":{IMAGES},"categories":{CATEGORIES},{head}[{ann(1, 1)}]}}'
    assert len(load_both(write_json, text).boxes) == boxes
