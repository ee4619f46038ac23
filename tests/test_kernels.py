"""numba's compiled sparse labelling against a second computation on random images with ties: its numpy oracle
(tests/sparse_reference.py, mmdetection's conventions) or, for the others, the dense torch path."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sparse_reference import match_sparse_numpy

from imbstat.anchors.generate import anchor_grid
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import CONVENTIONS, PRESETS
from imbstat.anchors.sparse import match_sparse

# The presets' conventions: mmdetection float64, legacy +1 areas, rpn's min_pos_iou, float32 with the
# torchvision rule, detectron2's float32 corners.
PRESET_NAMES = ("retinanet", "retinanet-v1", "rpn", "torchvision-retinanet", "detectron2-retinanet")


def _oracle(grid, gts: np.ndarray, num: np.ndarray, preset) -> Matches:
    if not set(preset.conventions()) & set(CONVENTIONS):
        return match_sparse_numpy(grid, gts, num, preset)
    torch = pytest.importorskip("torch")
    from imbstat.anchors.assign import match_dense_per_image

    dtype = torch.float32 if preset.float32 else torch.float64
    anchors, boxes = torch.from_numpy(grid.xyxy).to(dtype), torch.from_numpy(gts).to(dtype)
    return match_dense_per_image(anchors, boxes, num, preset, keep_bytes=2**26, workers=1)


@pytest.mark.parametrize("name", PRESET_NAMES)
def test_numba_and_numpy_label_random_images_alike(name):
    preset = PRESETS[name]
    rng = np.random.default_rng(7)
    grid = anchor_grid(preset, 640, 512)
    foreground = 0
    for _ in range(30):
        n = int(rng.integers(1, 7))
        xy = rng.integers(0, 600, (2, n, 2)).astype(np.float64)
        gts = np.concatenate([xy.min(axis=0), xy.max(axis=0) + rng.integers(0, 3, (n, 2))], axis=1)[None]
        gts[0, -1] = gts[0, 0]  # a repeated GT: every anchor ties between the two
        if preset.float32:
            gts = gts.astype(np.float32).astype(np.float64)  # float32 GTs, as the engine makes them
        num = np.array([n])
        compiled = match_sparse(grid, gts, num, preset).sorted()
        oracle = _oracle(grid, gts, num, preset).sorted()
        for field in dataclasses.fields(compiled):
            np.testing.assert_array_equal(
                getattr(compiled, field.name), getattr(oracle, field.name), err_msg=field.name
            )
        foreground += len(compiled.fg_anchor)
    assert foreground > 0
