"""What each annotation format's source looks like on disk, without parsing it.

Imported by the loaders, the Dataset and the cache alike; it imports none of
them, so that imports inside ``imbstat.data`` go one way.
"""

from __future__ import annotations

from pathlib import Path

from imbstat.data.source import path_kind
from imbstat.errors import ImbstatError

FORMATS = ("coco", "voc", "openimages", "yolo")


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its name and, for folders, its contents."""
    path = Path(path)
    if path_kind(path) == "file":
        suffix = path.suffix.lower()
        if suffix == ".json":
            return "coco"
        if suffix == ".csv":
            return "openimages"
        if suffix in (".yaml", ".yml"):
            return "yolo"
        if suffix == ".xml":
            return "voc"
        raise ImbstatError(
            f"cannot tell the format from the suffix {suffix!r}; expected .json, .csv, .yaml or a folder "
            "(or pass --format)",
            path,
        )
    if (path / "Annotations").is_dir() or any(path.glob("VOC*/Annotations")) or any(path.glob("*.xml")):
        return "voc"
    if (path / "labels").is_dir() or any(path.glob("*.yaml")) or any(path.glob("*.txt")):
        return "yolo"
    raise ImbstatError(
        "no annotations found; expected a VOC folder (Annotations/*.xml) or a YOLO folder (labels/*.txt)", path
    )


def data_yamls(folder: Path) -> list[Path]:
    """The Ultralytics data YAMLs directly in ``folder``, sorted."""
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


def sizes_hint(format: str, path: str) -> str:
    """What gives the missing image sizes of the dataset loaded from ``path``, in the options its format takes."""
    if format == "yolo":
        # Only images give a YOLO box its pixels; load_yolo takes ``images`` only without a data YAML.
        source = Path(path)
        if source.suffix.lower() in (".yaml", ".yml") or (source.is_dir() and data_yamls(source)):
            return "expected an image for each label file (images/x.jpg for labels/x.txt) whose header gives its size"
        return "pass --images DIR (the images the label files mirror), or keep images/ beside labels/"
    return "pass --sizes SIZES.csv (ImageID,Width,Height) or --images DIR"
