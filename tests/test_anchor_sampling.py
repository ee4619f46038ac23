"""The sampling stage (issue 13 part 2): by hand on four images, against a per-image loop and a per-anchor
class count from the Matches, shards merged, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from helpers import TOY as TOY_MMDET
from helpers import coco_doc
from typer.testing import CliRunner

import imbstat
import imbstat.cli.report
from imbstat.anchors.engine import batches, ground_truth, labelled, make_matcher
from imbstat.anchors.presets import PRESETS, load_preset, preset_from_dict
from imbstat.anchors.sampler import RandomSampler, parse_sampler
from imbstat.cli import app
from imbstat.data.sample import write_sample
from imbstat.errors import ImbstatError
from imbstat.report.document import dumps
from imbstat.report.taxonomy import taxonomy_rows
from imbstat.sections import ANCHORS, metric_table
from imbstat.sections.anchors import anchors_html, anchors_shift, write_tables
from imbstat.stats.anchors import AnchorStats
from imbstat.stats.batch import BatchOptions

# The hand cases sample every image (image 3 has no GT: mmdetection's training, TOY_MMDET's rule, leaves it out;
# test_training_images_by_hand).
TOY = dataclasses.replace(TOY_MMDET, train_images="all")
# TOY: one 32 px anchor per 16 px cell of the 64×64 image, [16c - 16, 16r - 16, 16c + 16, 16r + 16], r, c in 0..3.
IMAGES = [(1, 64, 64), (2, 64, 64), (3, 64, 64), (4, 64, 64)]
ANNOTATIONS = [
    # image 1: four GTs each exactly one anchor ((1, 1), (1, 3), (3, 1), (3, 3)), their neighbours at IoU <= 1/3:
    # 4 foreground (1 of a, 3 of b), 12 background.
    (1, 1, [0, 0, 32, 32], 0),
    (1, 2, [32, 0, 32, 32], 0),
    (1, 2, [0, 32, 32, 32], 0),
    (1, 2, [32, 32, 32, 32], 0),
    (2, 1, [0, 0, 32, 32], 0),  # image 2: 1 foreground (a), 15 background
    # image 3: no GT, 16 background. image 4: anchor (1, 1) at IoU 0.778 foreground (b), (1, 2) at 0.455
    # ignored, 14 background.
    (4, 2, [4, 0, 32, 32], 0),
]


def _hand(write_json) -> imbstat.Dataset:
    return imbstat.load(write_json(coco_doc(IMAGES, ANNOTATIONS, [(1, "a"), (2, "b")])))


@pytest.mark.parametrize(
    ("sampler", "expected"),
    [
        # quota int(4 · 0.5) = 2. positives min(fg, 2) = 2, 1, 0, 1; negatives min(bg, 4 - positives) = 2, 3, 4, 3.
        # Images 2, 3, 4 have fewer than 2 foreground anchors. Class a: 1 · 2/4 (image 1) + 1 (image 2) = 1.5;
        # b: 3 · 2/4 + 1 (image 4) = 2.5.
        ("random:4:0.5", dict(positives=4, negatives=12, short=3, a=1.5, b=2.5)),
        # quota 10: every foreground anchor is drawn (4, 1, 0, 1), negatives min(bg, 20 - positives) = every
        # background anchor (12, 15, 16, 14); every image is short; the classes keep their foreground counts.
        ("random:20:0.5", dict(positives=6, negatives=57, short=4, a=2.0, b=4.0)),
    ],
)
def test_sampled_by_hand(write_json, sampler, expected):
    preset = dataclasses.replace(TOY, sampler=sampler)  # image 3, with no GT, sampled too
    s = imbstat.anchor_stats(_hand(write_json), preset=preset, grid=4)
    assert s.per_image.tolist() == [[4, 12, 0], [1, 15, 0], [0, 16, 0], [1, 14, 1]]
    d = s.to_dict()["sampled"]
    num, fraction = int(sampler.split(":")[1]), 0.5
    assert (d["num"], d["pos_fraction"]) == (num, fraction)
    assert (d["positives"], d["negatives"]) == (expected["positives"], expected["negatives"])
    assert d["positives_mean"] == expected["positives"] / 4 and d["negatives_mean"] == expected["negatives"] / 4
    assert d["fg_bg_ratio"] == expected["positives"] / expected["negatives"]
    assert d["images_short_of_positives"] == {"images": expected["short"], "share": expected["short"] / 4}
    by_name = {row["name"]: row["positives"] for row in d["per_class"]}
    assert by_name == {"a": pytest.approx(expected["a"]), "b": pytest.approx(expected["b"])}
    assert [row["name"] for row in d["per_class"]] == sorted(by_name, key=lambda n: -by_name[n])  # most first
    # scores: 2-bin fg vs bg |2·pos/(pos + neg) - 1|; two classes: |2·max share - 1|
    p, n = expected["positives"], expected["negatives"]
    assert d["scores"]["foreground_background"] == pytest.approx(abs(2 * p / (p + n) - 1))
    assert d["scores"]["foreground_classes"] == pytest.approx(abs(2 * expected["b"] / p - 1))


def test_sampler_text_and_presets():
    assert parse_sampler("random:256:0.5") == RandomSampler(256, 0.5)
    assert parse_sampler("none") is None and parse_sampler("") is None
    assert RandomSampler(512, 0.25).positive_quota == 128 and RandomSampler(3, 0.5).positive_quota == 1
    for bad in ("random:0:0.5", "random:256:1.5", "random:256", "ohem:256:0.5", "random:x:0.5"):
        with pytest.raises(ValueError, match="sampler"):
            parse_sampler(bad)
    # the frameworks' RPN samplers; the one-stage presets have none and write the preset block they always wrote
    assert PRESETS["rpn"].sampler == PRESETS["torchvision-rpn"].sampler == "random:256:0.5"
    assert PRESETS["retinanet"].sampler == "" and "sampler" not in PRESETS["retinanet"].to_dict()
    assert PRESETS["rpn"].conventions() == {}  # the sampler changes no anchor and no label
    spelled = dataclasses.replace(TOY, sampler="RANDOM:256:0.50")
    assert spelled.sampler == "random:256:0.5" and preset_from_dict(spelled.to_dict()) == spelled
    # --sampler overrides the preset's, "none" removes it; a bad one is an ImbstatError before any load
    assert imbstat.AnchorOptions(preset="rpn", sampler="none").preset.sampler == ""
    assert imbstat.AnchorOptions(sampler="random:512:0.25").preset.sampler == "random:512:0.25"
    message = "sampler 'random:1:2': expected 1 <= NUM <= 1,000,000,000 and 0 <= POS_FRACTION <= 1"
    with pytest.raises(ImbstatError, match=re.escape(message)):
        imbstat.AnchorOptions(sampler="random:1:2")


def test_preset_toml_sampler(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "rpn"\nsampler = "random:512:0.25"\n')
    assert load_preset(path).sampler == "random:512:0.25"
    path.write_text('base = "rpn"\nsampler = "none"\n')
    assert load_preset(path).sampler == ""
    path.write_text('sampler = "random:-1:0.5"\n')
    with pytest.raises(ImbstatError, match=re.escape("inconsistent preset: sampler 'random:-1:0.5'")):
        load_preset(path)


def _sample(tmp_path) -> tuple[imbstat.Dataset, object]:
    ds = imbstat.load(write_sample(tmp_path / "sample.json", num_images=30))
    preset = dataclasses.replace(TOY_MMDET, resize=imbstat.anchors.resize.Resize(200, 333), strides=(8, 16),
                                 sampler="random:64:0.25")  # fmt: skip
    return ds, preset


def test_against_a_loop_over_images_and_anchors(tmp_path):
    ds, preset = _sample(tmp_path)
    s = imbstat.anchor_stats(ds, preset=preset, batch_size=7)
    d = s.to_dict()["sampled"]
    # second method: each image's sampled counts in a Python loop over AnchorStats.per_image
    positives = negatives = short = left_out = 0
    for image, (fg, bg, _) in enumerate(s.per_image.tolist()):
        # mmdetection's training (the preset's default rule): an annotation and both sides >= 32 px
        if not (image in ds.boxes.image.tolist() and min(ds.images.width[image], ds.images.height[image]) >= 32):
            left_out += 1
            continue
        pos = min(fg, 16)  # int(64 · 0.25)
        positives, negatives, short = positives + pos, negatives + min(bg, 64 - pos), short + (fg < 16)
    assert (d["positives"], d["negatives"], d["images_short_of_positives"]["images"]) == (positives, negatives, short)
    assert d["images_left_out"] == {"images": left_out, "rule": "mmdetection"}
    assert 0 < short < ds.num_images - left_out and s.per_image[:, 2].sum() > 0  # both kinds, ignored anchors too
    assert left_out == 1 and not s.trained[s.per_image_gts[:, 0] == 0].any()  # the sample's image without a box
    # per class: each foreground anchor's class counted one by one from the Matches, image by image
    gt = ground_truth(ds, preset)
    expected = np.zeros(len(ds.categories))
    for batch, m in labelled(batches(gt, preset, 5), make_matcher(preset), 1):
        for b, image in enumerate(batch.images):
            mine = m.fg_image == b
            classes = Counter(int(ds.boxes.category[gt.box[batch.gt_rows[b, g]]]) for g in m.fg_gt[mine])
            fg = int(mine.sum())
            assert fg == s.per_image[image, 0]
            for k, count in classes.items():
                expected[k] += count * min(fg, 16) / fg * s.trained[image]
    np.testing.assert_allclose(s.class_sampled_positives, expected, rtol=1e-12)
    assert sum(row["positives"] for row in d["per_class"]) == pytest.approx(positives)


def test_shards_merge(tmp_path):
    ds, preset = _sample(tmp_path)
    whole = imbstat.anchor_stats(ds, preset=preset)
    shards = [imbstat.anchor_stats(ds.take_shard(i, 3), preset=preset) for i in range(3)]
    parts = [AnchorStats.from_dict(json.loads(dumps(p.to_dict(raw=True)))) for p in shards]
    merged = ANCHORS.merge_results(parts, ds, 3)
    np.testing.assert_array_equal(merged.per_image, whole.per_image)
    # a float sum in another order: equal to rounding
    np.testing.assert_allclose(merged.class_sampled_positives, whole.class_sampled_positives, rtol=1e-12)
    a, b = merged.to_dict()["sampled"], whole.to_dict()["sampled"]
    assert {k: v for k, v in a.items() if k not in ("per_class", "scores")} == {
        k: v for k, v in b.items() if k not in ("per_class", "scores")
    }


def test_without_a_sampler_the_json_is_unchanged(write_json):
    s = imbstat.anchor_stats(_hand(write_json), preset=TOY, grid=4)
    d = s.to_dict(raw=True)
    assert "sampled" not in d and "sampler" not in d["preset"] and "class_sampled_positives" not in d["raw"]
    assert not s.class_sampled_positives.any()
    back = AnchorStats.from_dict(json.loads(dumps(d)))  # a shard's report written before the field existed
    assert back.sampled is None and back.class_sampled_positives.tolist() == [0.0, 0.0]


runner = CliRunner()


def test_cli(write_json, tmp_path):
    path = write_json(coco_doc(IMAGES, ANNOTATIONS, [(1, "a"), (2, "b")]))
    preset = tmp_path / "toy.toml"
    preset.write_text("strides = [16]\nresize_short = 64\nresize_long = 64\noctave_base_scale = 2.0\n"
                      "scales_per_octave = 1\nratios = [1.0]\ntrain_images = \"all\"\n")  # fmt: skip
    args = ["anchor-iou", str(path), "--preset", str(preset), "--grid", "4", "-q"]
    result = runner.invoke(app, [*args, "--anchor-sampler", "random:4:0.5", "--json", "-"])
    assert result.exit_code == 0, result.output
    sampled = json.loads(result.stdout)["sampled"]
    assert (sampled["positives"], sampled["negatives"]) == (4, 12)  # as test_sampled_by_hand
    # the tables: sampled beside assigned
    result = runner.invoke(app, [*args, "--anchor-sampler", "random:4:0.5"])
    assert result.exit_code == 0 and "sampled" in result.stdout
    assert "sampled" not in json.loads(runner.invoke(app, [*args, "--json", "-"]).stdout)
    result = runner.invoke(app, [*args, "--anchor-sampler", "random:4"])
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "imbstat: error: sampler 'random:4': expected random:NUM:POS_FRACTION (e.g. random:256:0.5), or none"
    ]


def test_report_takes_the_sampler_as_anchor_sampler(tiny_coco, monkeypatch):
    """report's own --sampler orders the training batches; the anchors' sampler is --anchor-sampler."""
    seen = []

    def computed(path, source, run, quiet=False):
        seen.append((run.anchors.preset.sampler, run.batch))
        raise ImbstatError("stop here")

    monkeypatch.setattr(imbstat.cli.report, "_compute", computed)
    args = ["report", str(tiny_coco), "--anchors", "--preset", "rpn", "-q"]
    runner.invoke(app, [*args, "--anchor-sampler", "random:512:0.25", "--batch-size", "2", "--sampler", "aspect-group"])
    runner.invoke(app, args)
    assert seen == [("random:512:0.25", BatchOptions(2, "aspect-group", epochs=10, seed=0)),
                    ("random:256:0.5", None)]  # fmt: skip
    result = runner.invoke(app, [*args, "--anchor-sampler", "random"])
    assert result.exit_code == 2 and result.stderr.startswith("imbstat: error: sampler 'random': expected")


def _hand_stats(write_json, sampler: str) -> AnchorStats:
    return imbstat.anchor_stats(_hand(write_json), preset=dataclasses.replace(TOY, sampler=sampler), grid=4)


def test_report_reader_metrics_and_shift(write_json):
    a, b = (_hand_stats(write_json, sampler) for sampler in ("random:4:0.5", "random:20:0.5"))
    # a report's anchors section read back (JSON written, NaN as null) has the sampled block of the result
    read = ANCHORS.read(json.loads(dumps(ANCHORS.to_json(a, _hand(write_json)))))
    same = {f: getattr(read.sampled, f) for f in ("category_id", "name", "class_positives")}
    assert read.sampled == dataclasses.replace(a.sampled, **same)  # the arrays compared next
    assert dict(zip(read.sampled.name, read.sampled.class_positives, strict=True)) == {"b": 2.5, "a": 1.5}
    extras = ANCHORS.extra_metrics(read)
    assert extras["sampled.fg_bg_ratio"] == 4 / 12 and extras["sampled.images_short_of_positives"] == 0.75
    assert extras["sampled.positives_mean"] == 1.0 and extras["sampled.negatives_mean"] == 3.0
    assert extras["sampled.foreground_background"] == 0.5  # |2 · 4/16 - 1|
    valid = metric_table()
    assert all(f"anchors.{name}" in valid for name in extras)
    assert {f"compare.anchors.sampled.{s}" for s in ("foreground_background", "foreground_classes")} <= set(valid)
    # compare: 2-bin 2·|4/16 - 6/63|; classes by rank 2·|2.5/4 - 4/6|
    skipped: dict[str, str] = {}
    scores = anchors_shift(ANCHORS.view(a), ANCHORS.view(b), skipped)["scores"]
    assert scores["sampled.foreground_background"] == pytest.approx(2 * abs(4 / 16 - 6 / 63))
    assert scores["sampled.foreground_classes"] == pytest.approx(2 * abs(2.5 / 4 - 4 / 6))
    assert not skipped
    without = ANCHORS.view(imbstat.anchor_stats(_hand(write_json), preset=TOY, grid=4))
    assert "sampled.foreground_background" not in anchors_shift(ANCHORS.view(a), without, skipped)["scores"]
    assert skipped == {"anchors.sampled": "only A has a sampling stage (--sampler)"}
    assert not any(name.startswith("sampled.") for name in ANCHORS.extra_metrics(without))


NUM = ' class="num"'


def test_taxonomy_and_html(write_json):
    ds = _hand(write_json)
    results = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset=TOY, grid=4, sampler="random:4:0.5"))
    row = next(r for r in taxonomy_rows(results) if r.metric == "anchors.foreground_background")
    # assigned 6 : 57 and sampled 4 : 12, side by side
    assert row.statistic.endswith("fg:bg 1 : 10, sampled fg:bg 1 : 3"), row.statistic
    page = anchors_html(ANCHORS.view(results.anchors), "")
    assert "<h3>Sampled: 4 per image, ≤ 2 positives</h3>" in page
    for cells in (["foreground", "6", "4", "1.0"], ["background", "57", "12", "3.0"], ["images with &lt; 2 fg", "",
                  "3", "75.0%"], ["b", "2.5"], ["a", "1.5"]):  # fmt: skip
        tds = [f"<td{NUM if i else ''}>{c}</td>" for i, c in enumerate(cells)]
        assert "".join(tds) in page
    plain_run = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset=TOY, grid=4))
    row = next(r for r in taxonomy_rows(plain_run) if r.metric == "anchors.foreground_background")
    assert "sampled" not in row.statistic and "Sampled" not in anchors_html(ANCHORS.view(plain_run.anchors), "")


def test_csv_tables(write_json, tmp_path):
    ds = _hand(write_json)
    written = write_tables(_hand_stats(write_json, "random:4:0.5"), ds.images, tmp_path)
    assert tmp_path / "anchors_sampled_per_class.csv" in written
    assert (tmp_path / "anchors_sampled_per_class.csv").read_text().splitlines() == [
        "category_id,name,positives", "2,b,2.5", "1,a,1.5"
    ]  # fmt: skip
    frame = pd.read_csv(tmp_path / "anchors_per_image.csv")
    assert frame["sampled_positives"].tolist() == [2, 1, 0, 1] and frame["sampled_negatives"].tolist() == [2, 3, 4, 3]
    plain = write_tables(imbstat.anchor_stats(ds, preset=TOY, grid=4), ds.images, tmp_path / "plain")
    assert not any("sampled" in p.name for p in plain)
    assert "sampled_positives" not in (tmp_path / "plain" / "anchors_per_image.csv").read_text()


def test_training_images_by_hand(write_json, tmp_path):
    from imbstat.stats.anchor_sampling import trained_images

    doc = coco_doc(
        [(1, 64, 64), (2, 64, 64), (3, 64, 64), (4, 64, 64), (5, 20, 64)],
        [
            (1, 1, [0, 0, 32, 32], 0),  # 1: an ordinary box
            (3, 1, [0, 0, 32, 32], 1),  # 3: a crowd box only; 2: no annotation
            (4, 2, [10, 10, 1, 20], 0),  # 4: a box 1 px wide only
            (5, 2, [0, 0, 10, 10], 0),  # 5: an image 20 px wide
        ],
        [(1, "a"), (2, "b")],
    )
    ds = imbstat.load(write_json(doc))
    # mmdetection keeps crowd and thin boxes' images, not the empty or the narrow one; torchvision wants a box
    # over 1 px each way; detectron2 a box that is not crowd.
    expected = {"mmdetection": [1, 0, 1, 1, 0], "torchvision": [1, 0, 1, 0, 1], "detectron2": [1, 0, 0, 1, 1],
                "all": [1, 1, 1, 1, 1]}  # fmt: skip
    for rule, trained in expected.items():
        assert trained_images(ds, rule).astype(int).tolist() == trained, rule
    assert (PRESETS["rpn"].train_images, PRESETS["torchvision-rpn"].train_images) == ("mmdetection", "torchvision")
    assert PRESETS["detectron2-retinanet"].train_images == "detectron2"
    assert "train_images" not in PRESETS["rpn"].to_dict() and PRESETS["torchvision-rpn"].conventions().keys() == (
        PRESETS["torchvision-retinanet"].conventions().keys()  # no anchor changes with it
    )
    # through the sampling stage: images 2 and 5 are counted, labelled, and not sampled
    s = imbstat.anchor_stats(ds, preset=dataclasses.replace(TOY_MMDET, sampler="random:4:0.5"), grid=4)
    d = s.to_dict()["sampled"]
    kept = s.per_image[[0, 2, 3]]
    positives = np.minimum(kept[:, 0], 2)
    assert d["positives"] == positives.sum() and d["negatives"] == np.minimum(kept[:, 1], 4 - positives).sum()
    assert d["images_left_out"] == {"images": 2, "rule": "mmdetection"} and s.num_images == 5
    assert d["positives_mean"] == d["positives"] / 3
    write_tables(s, ds.images, tmp_path)
    frame = pd.read_csv(tmp_path / "anchors_per_image.csv")
    assert frame["trained"].tolist() == [True, False, True, True, False]
    assert frame["sampled_negatives"].tolist()[1] == frame["sampled_negatives"].tolist()[4] == 0
    # TOML: the rule by name; a wrong one is an inconsistent preset
    path = tmp_path / "mine.toml"
    path.write_text('base = "rpn"\ntrain_images = "detectron2"\n')
    assert load_preset(path).train_images == "detectron2"
    path.write_text('base = "rpn"\ntrain_images = "coco"\n')
    with pytest.raises(ImbstatError, match="train_images must be one of mmdetection, torchvision, detectron2, all"):
        load_preset(path)
