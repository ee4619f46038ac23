"""Fixtures shared by the test modules. Plain helpers (paths, builders, comparisons) are in helpers.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TINY_ANNOTATIONS, TINY_CATEGORIES, TINY_IMAGES, coco_doc


@pytest.fixture
def write_json(tmp_path: Path):
    def write(doc: object, name: str = "instances.json") -> Path:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return write


@pytest.fixture
def tiny_coco(write_json) -> Path:
    return write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES))
