"""What a labeling path returns for a batch: foreground and ignored anchors (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Matches:
    """Foreground and ignored anchors of a batch of B images that share one anchor grid.

    ``fg_*`` are [F] arrays: batch image, anchor index, assigned GT (index into
    the image's GTs) and its IoU. ``ignored_*`` are [G]. ``gt_max_iou`` is
    [B, M]: each GT's maximum IoU over all anchors (0 for padding).
    """

    fg_image: np.ndarray  # [F] int64
    fg_anchor: np.ndarray  # [F] int64
    fg_gt: np.ndarray  # [F] int64
    fg_iou: np.ndarray  # [F] float64
    ignored_image: np.ndarray  # [G] int64
    ignored_anchor: np.ndarray  # [G] int64
    gt_max_iou: np.ndarray  # [B, M] float64

    def sorted(self) -> Matches:
        """Canonical order (image, anchor), so that two paths can be compared field by field."""
        fg = np.lexsort((self.fg_anchor, self.fg_image))
        ig = np.lexsort((self.ignored_anchor, self.ignored_image))
        return Matches(
            self.fg_image[fg], self.fg_anchor[fg], self.fg_gt[fg], self.fg_iou[fg],
            self.ignored_image[ig], self.ignored_anchor[ig], self.gt_max_iou,
        )  # fmt: skip
