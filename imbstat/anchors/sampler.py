"""The sampling stage of two-stage detectors (survey §4.1.1, hard sampling): how many anchors an image trains on.

mmdetection 2.x ``RandomSampler`` (core/bbox/samplers/base_sampler.py ``BaseSampler.sample``,
random_sampler.py) and torchvision's ``BalancedPositiveNegativeSampler`` (models/detection/_utils.py)
draw, per image, ``min(fg, int(num · pos_fraction))`` positives (anchors with a GT) and
``min(bg, num − positives)`` negatives (background anchors); ignored anchors are neither. Which anchors
are drawn is random, how many is not: the counts below are exact, and a class's expected share of the
positives is its share of the image's foreground anchors (a uniform draw without replacement).
mmdetection's ``neg_pos_ub`` (-1 in its RPN configs) and ``add_gt_as_proposals`` (False for the RPN;
GTs are not anchors) are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Anchors per image are far fewer (presets.MAX_ANCHORS); a NUM beyond int64 overflowed numpy (issue 20).
MAX_NUM = 10**9
SAMPLER_SYNTAX = "random:NUM:POS_FRACTION (e.g. random:256:0.5), or none"


@dataclass(frozen=True)
class RandomSampler:
    """``num`` anchors per image, ``int(num · pos_fraction)`` of them positives at most."""

    num: int
    pos_fraction: float

    @property
    def positive_quota(self) -> int:
        return int(self.num * self.pos_fraction)  # as the frameworks round it (Python's int of the float product)

    def sampled(self, foreground: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positives and negatives drawn from images with these foreground and background anchor counts."""
        positives = np.minimum(foreground, self.positive_quota)
        return positives, np.minimum(background, self.num - positives)

    def __str__(self) -> str:
        return f"random:{self.num}:{self.pos_fraction!r}"


def parse_sampler(text: str) -> RandomSampler | None:
    """``random:NUM:POS_FRACTION`` as a sampler; ``""`` or ``none``: no sampling stage. ValueError otherwise."""
    if text.strip().lower() in ("", "none"):
        return None
    parts = text.split(":")
    try:
        if len(parts) != 3 or parts[0].strip().lower() != "random":
            raise ValueError
        num, fraction = int(parts[1]), float(parts[2])
    except ValueError:
        raise ValueError(f"sampler {text!r}: expected {SAMPLER_SYNTAX}") from None
    if not 1 <= num <= MAX_NUM or not (0 <= fraction <= 1):
        raise ValueError(f"sampler {text!r}: expected 1 <= NUM <= {MAX_NUM:,} and 0 <= POS_FRACTION <= 1")
    return RandomSampler(num, fraction)
