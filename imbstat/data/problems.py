"""Why a loader excluded or repaired an annotation or image: the reasons, and one row per problem."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


class Reason(enum.Enum):
    """Why an annotation or image was excluded or repaired while loading.

    Each member is ``(severity, action, description)``: ``error`` problems
    exclude what they name, ``warning`` problems repair it or keep it as is.
    """

    UNKNOWN_IMAGE = ("error", "excluded", "box refers to an image id that is not in the images")
    UNKNOWN_CATEGORY = ("error", "excluded", "box refers to a category id that is not in the categories")
    NAN_COORDINATE = ("error", "excluded", "box has a NaN or infinite coordinate")
    NON_POSITIVE_SIZE = ("error", "excluded", "box has zero or negative width or height")
    OUTSIDE_IMAGE = ("error", "excluded", "box lies wholly outside its image")
    IMAGE_EXCLUDED = ("error", "excluded", "box belongs to an image that was excluded")
    DUPLICATE_IMAGE_ID = ("error", "excluded", "image id repeats an earlier image; the later entry is excluded")
    INVALID_IMAGE_SIZE = (
        "error",
        "excluded",
        "image width or height is missing, outside 1 to 2147483647 pixels, or over 1000 times the other",
    )
    CLIPPED_TO_IMAGE = ("warning", "repaired", "box extends outside its image and was clipped to it")
    DUPLICATE_ANNOTATION_ID = ("warning", "kept", "annotation id repeats an earlier annotation")
    UNLABELLED_FILE = ("warning", "kept", "label file has no matching image; its image size is unknown")
    DUPLICATE_KEY = ("warning", "kept", "key given twice: a root array's copies are all read, a record keeps the last")
    INVALID_AREA = (
        "warning",
        "repaired",
        "annotation area is not a finite number >= 0; the box's width x height is its area instead",
    )

    @property
    def key(self) -> str:
        return self.name.lower()

    @property
    def severity(self) -> str:
        return self.value[0]

    @property
    def action(self) -> str:
        return self.value[1]

    @property
    def description(self) -> str:
        return self.value[2]

    @property
    def subject(self) -> str:
        """What one problem of this reason names: an ``image`` entry, a label ``file`` or (the rest) a ``box``."""
        if self in (Reason.DUPLICATE_IMAGE_ID, Reason.INVALID_IMAGE_SIZE):
            return "image"
        return "file" if self is Reason.UNLABELLED_FILE else "box"


REASONS = list(Reason)  # a problem's reason code is its index here


@dataclass(frozen=True)
class Problems:
    """Every excluded or repaired item, one row each: reason code and location.

    ``reason[i]`` indexes ``list(Reason)``; ``location[i]`` says where in the
    source it is (file and JSON path, CSV line or XML file), ``detail[i]`` what
    was found.
    """

    reason: np.ndarray  # [P] int8
    location: np.ndarray  # [P] object (str)
    detail: np.ndarray  # [P] object (str)

    @classmethod
    def empty(cls) -> Problems:
        return cls(np.zeros(0, np.int8), np.zeros(0, object), np.zeros(0, object))

    @classmethod
    def of(cls, reason: Reason, location: Sequence[str], detail: Sequence[str] | None = None) -> Problems:
        n = len(location)
        code = np.full(n, REASONS.index(reason), np.int8)
        detail = [""] * n if detail is None else detail
        return cls(code, np.asarray(location, object).reshape(n), np.asarray(detail, object).reshape(n))

    @classmethod
    def concat(cls, parts: Sequence[Problems]) -> Problems:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)))

    def __len__(self) -> int:
        return len(self.reason)

    def reasons(self) -> list[Reason]:
        return [REASONS[c] for c in self.reason]

    def counts(self) -> dict[str, int]:
        """``{reason key: count}`` for the reasons that occur, in declaration order."""
        counts = np.bincount(self.reason.astype(np.int64), minlength=len(REASONS))
        return {r.key: int(c) for r, c in zip(REASONS, counts, strict=True) if c}

    @property
    def num_errors(self) -> int:
        error_codes = [i for i, r in enumerate(REASONS) if r.severity == "error"]
        return int(np.isin(self.reason, error_codes).sum())

    def num_excluded(self, subject: str) -> int:
        """How many ``box`` or ``image`` entries of the source the Dataset left out (see :attr:`Reason.subject`)."""
        codes = [i for i, r in enumerate(REASONS) if r.action == "excluded" and r.subject == subject]
        return int(np.isin(self.reason, codes).sum())
