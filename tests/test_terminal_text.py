"""User text (class names, file names, paths) reaches the terminal exactly as written.

Never as rich markup (``[/]`` once raised MarkupError, ``traffic [light]`` showed as
``traffic ``, ``:cat:`` as an emoji) and never as raw control characters: ESC, CR, LF,
C1 and format characters show as their Python escapes (``\\x1b``). The JSON keeps the
exact text. Each format's loader feeds names through the CLI of every command with a table.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from format_writers import OPENIMAGES_HEADER, png
from helpers import run

from imbstat.cli import common

# (name as written in the data, name as the terminal must show it)
MARKUP = [("[/]", "[/]"), ("[bold]", "[bold]"), ("[red]x", "[red]x"), ("traffic [light]", "traffic [light]"),
          (":cat:", ":cat:")]  # fmt: skip
CONTROL = [("esc\x1b[31mred", r"esc\x1b[31mred"), ("nl\nx", r"nl\nx"), ("c1\x9bx", r"c1\x9bx")]
MORE_CONTROL = [("cr\rx", r"cr\rx"), ("tab\tx", r"tab\tx"), ("rtl\u202ex", r"rtl\u202ex"), ("del\x7fx", r"del\x7fx")]
# XML 1.0 cannot hold control characters: VOC names carry markup only
NAMES = {"coco": MARKUP + CONTROL + MORE_CONTROL, "voc": MARKUP, "openimages": MARKUP + CONTROL,
         "yolo": MARKUP + CONTROL}  # fmt: skip
# Anything a terminal would act on; "\n" only ends lines of ours.
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]")
WIDTH, HEIGHT = 640, 480


def shown(text: str) -> str:
    """``text`` with the control characters of these fixtures as the escapes a terminal must show."""
    escapes = {"\x1b": r"\x1b", "\n": r"\n", "\r": r"\r", "\t": r"\t", "\x9b": r"\x9b", "\x7f": r"\x7f"}
    return "".join(escapes.get(c, c) for c in text).replace("\u202e", r"\u202e").replace("\udcff", r"\udcff")


def has_cell(output: str, text: str) -> bool:
    """``text`` is the whole content of one table cell (left or right justified)."""
    return re.search(rf"│ +{re.escape(text)} +│", output) is not None


def check_clean(result) -> None:
    """Exit 0 and nothing raw for the terminal to act on, on stdout or stderr."""
    assert result.exit_code == 0, result.output
    assert not RAW_CONTROL.search(result.stdout), result.stdout
    assert not RAW_CONTROL.search(result.stderr), result.stderr


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """A console wide enough that no path or name wraps inside its cell."""
    monkeypatch.setattr(common.stdout, "_width", 400)


def hostile_dir(tmp_path: Path) -> Path:
    """A folder whose path holds markup and an escape sequence: ``.../[red]<ESC>[7m/[/]``."""
    folder = tmp_path / "[red]\x1b[7m" / "[" / "]"
    folder.mkdir(parents=True)
    return folder


def box(i: int) -> tuple[int, int, int, int]:
    """Box ``i`` of a 640×480 image, x, y, w, h in pixels: 40×40, one per class, side by side."""
    return 10 + 40 * i, 10 + 20 * i, 40, 40


def write_coco(folder: Path, names: list[str]) -> Path:
    path = folder / "instances.json"
    doc = {
        "images": [{"id": 1, "width": WIDTH, "height": HEIGHT, "file_name": "a.jpg"}],
        "annotations": [
            {"id": i + 1, "image_id": 1, "category_id": i + 1, "bbox": list(box(i)), "iscrowd": 0}
            for i in range(len(names))
        ],
        "categories": [{"id": i + 1, "name": name} for i, name in enumerate(names)],
    }
    path.write_text(json.dumps(doc))
    return path


def write_voc(folder: Path, names: list[str]) -> Path:
    from xml.sax.saxutils import escape

    objects = "".join(
        f"<object><name>{escape(name)}</name><bndbox><xmin>{x}</xmin><ymin>{y}</ymin><xmax>{x + w}</xmax>"
        f"<ymax>{y + h}</ymax></bndbox></object>"
        for name, (x, y, w, h) in zip(names, map(box, range(len(names))), strict=True)
    )
    (folder / "Annotations").mkdir()
    (folder / "Annotations" / "a.xml").write_text(
        f"<annotation><size><width>{WIDTH}</width><height>{HEIGHT}</height></size>{objects}</annotation>"
    )
    return folder


def write_openimages(folder: Path, names: list[str]) -> list[object]:

    rows = [OPENIMAGES_HEADER]
    for i in range(len(names)):
        x, y, w, h = box(i)
        rows.append(f"img,xclick,/m/{i},1,{x / WIDTH},{(x + w) / WIDTH},{y / HEIGHT},{(y + h) / HEIGHT},0,0,0,0,0")
    (folder / "boxes.csv").write_text("\n".join(rows) + "\n")
    quoted = ['"' + name.replace('"', '""') + '"' for name in names]  # a quoted field may hold a newline
    (folder / "classes.csv").write_text("".join(f"/m/{i},{q}\n" for i, q in enumerate(quoted)))
    (folder / "sizes.csv").write_text(f"ImageID,Width,Height\nimg,{WIDTH},{HEIGHT}\n")
    return [folder / "boxes.csv", "--classes", folder / "classes.csv", "--sizes", folder / "sizes.csv"]


def write_yolo(folder: Path, names: list[str]) -> Path:
    (folder / "images" / "train").mkdir(parents=True)
    (folder / "images" / "train" / "a.png").write_bytes(png(WIDTH, HEIGHT))
    (folder / "labels" / "train").mkdir(parents=True)
    lines = []
    for i in range(len(names)):
        x, y, w, h = box(i)
        lines.append(f"{i} {(x + w / 2) / WIDTH} {(y + h / 2) / HEIGHT} {w / WIDTH} {h / HEIGHT}")
    (folder / "labels" / "train" / "a.txt").write_text("\n".join(lines) + "\n")
    # JSON strings are YAML double-quoted strings: \u001b, \n and \u009b escaped
    (folder / "data.yaml").write_text(
        "path: .\ntrain: images/train\nnames:\n" + "".join(f"  - {json.dumps(n)}\n" for n in names)
    )
    return folder / "data.yaml"


WRITERS = {"coco": write_coco, "voc": write_voc, "openimages": write_openimages, "yolo": write_yolo}


@pytest.fixture(params=list(WRITERS))
def dataset(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[list[object], list[tuple[str, str]]]:
    """(CLI arguments naming the dataset, [(name, shown)]) of one format in a hostile folder."""
    names = NAMES[request.param]
    written = WRITERS[request.param](hostile_dir(tmp_path), [name for name, _ in names])
    return (written if isinstance(written, list) else [written]), names


@pytest.mark.parametrize("command", [["class-dist"], ["location", "--per-class"], ["anchor-iou", "-q"]])
def test_class_names_shown_as_written(dataset, command: list[str]):
    args, names = dataset
    result = run(command[0], *args, *command[1:])
    check_clean(result)
    for name, text in names:
        assert has_cell(result.stdout, text), f"{name!r} not shown as {text!r}:\n{result.stdout}"


def test_json_keeps_names_exact(dataset):
    args, names = dataset
    result = run("class-dist", *args, "--json", "-")
    check_clean(result)  # JSON escapes control characters itself
    assert sorted(c["name"] for c in json.loads(result.stdout)["classes"]) == sorted(name for name, _ in names)


def test_path_shown_as_written(dataset):
    args, _ = dataset
    path = json.loads(run("info", *args, "--json", "-").stdout)["dataset"]["path"]
    assert "[/]" in path and "\x1b" in path  # the JSON keeps the path exact
    result = run("info", *args)
    check_clean(result)
    assert has_cell(result.stdout, shown(path)), result.stdout


@pytest.mark.parametrize("command", ["scale", "summary"])
def test_other_tables(dataset, command: str):
    args, _ = dataset
    result = run(command, *args)
    check_clean(result)
    assert "│" in result.stdout


def test_validate_and_notes_show_file_names(tmp_path: Path):
    """A VOC file named with markup and ESC: its problem line and the load note show it escaped."""
    root = hostile_dir(tmp_path)
    write_voc(root, ["[bold]"])
    xml = root / "Annotations" / "a.xml"
    # the box runs past the image: clipped_to_image, a warning with the file's name
    xml.write_text(xml.read_text().replace("<xmax>50</xmax>", "<xmax>700</xmax>"))
    xml.rename(root / "Annotations" / "[red]\x1b[2J.xml")
    result = run("validate", root)
    check_clean(result)
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(shown(str(root)) + ": ")
    assert r"[red]\x1b[2J.xml" in lines[0] and "clipped_to_image" in lines[0]
    result = run("class-dist", root)
    check_clean(result)
    assert f"'imbstat validate {shown(str(root))}' lists them" in result.stderr
    assert has_cell(result.stdout, "[bold]")


def test_error_line_shows_path(tmp_path: Path):
    missing = hostile_dir(tmp_path) / "nl\nmissing\x1b[0m.json"
    result = run("class-dist", missing)
    assert result.exit_code == 2
    assert not RAW_CONTROL.search(result.stderr)
    assert result.stderr.startswith(f"imbstat: error: {shown(str(missing))}: ")
    assert result.stderr.count("\n") == 1  # one line, though the path holds a newline


def test_undecodable_file_name(tmp_path: Path):
    """A file name that is not UTF-8 (byte 0xff, a lone surrogate in Python) is shown as its escape."""
    folder = tmp_path / "\udcff"
    folder.mkdir()
    path = write_coco(folder, ["cat"])
    result = run("info", path)
    check_clean(result)
    assert has_cell(result.stdout, shown(str(path)))


def test_compare_shows_names_and_paths(tmp_path: Path):
    names = [name for name, _ in MARKUP + CONTROL]  # with the one added: all among the 10 largest share changes
    a = write_coco(hostile_dir(tmp_path), names)
    other = tmp_path / "b"
    other.mkdir()
    b = write_coco(other, [*names, "[bold]new\x1b[0m"])
    result = run("compare", a, b, "-q")
    check_clean(result)
    assert has_cell(result.stdout, shown(str(a)))
    assert re.search(r"│ gained +│ \[bold\]new\\x1b\[0m +│", result.stdout), result.stdout
    for _, text in MARKUP + CONTROL:
        assert has_cell(result.stdout, text)


@pytest.mark.slow
def test_audit_and_report_show_paths(tmp_path: Path):
    folder = hostile_dir(tmp_path)
    path = write_coco(folder, ["[/]"])
    config = tmp_path / "audit.toml"
    config.write_text('checks = ["dataset.images == 1"]\n')
    result = run("audit", path, "--config", config, "-q")
    check_clean(result)
    title = result.stdout.split("┏")[0]  # wrapped at the table's width
    title = "".join(line.strip() for line in title.splitlines())
    assert title.startswith(f"audit of{shown(str(path))}"), result.stdout
    out = folder / "report [x]\x1b[1m"
    result = run("report", path, "--out", out, "-q")
    check_clean(result)
    assert f"Report written to {shown(str(out))}/; open {shown(str(out / 'index.html'))} in a browser." in result.stdout


def test_preset_name_in_the_anchor_table(tmp_path: Path):
    preset = hostile_dir(tmp_path) / "p.toml"
    preset.write_text('name = "[/]\\u001b[5m"\n')
    result = run("anchors", "--preset", preset)
    check_clean(result)
    assert r"preset [/]\x1b[5m: 640×480" in result.stdout


def test_figures_do_not_read_names_as_mathtext(tmp_path: Path):
    """'$' in a class name is text in a figure, not a mathtext formula that fails to parse."""
    path = write_coco(tmp_path, ["$\\frac{$", "a$b$", "esc\x1b[5m"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warned 'Glyph 27 missing', raw ESC included
        result = run("class-dist", path, "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "classes_long_tail.png").is_file()


def test_visible_escapes_only_what_a_terminal_would_act_on():
    from imbstat.text import visible

    assert visible("traffic [light] é… ×\\x1b") == "traffic [light] é… ×\\x1b"  # printable: unchanged
    assert visible("a\x00\x1b\x7f\x80\x9f\u200b\u2028\udcffz") == r"a\x00\x1b\x7f\x80\x9f\u200b\u2028\udcffz"
    assert visible("\t\r\n") == r"\t\r\n"


def test_figures_keep_their_own_mathtext_and_line_breaks(tmp_path: Path, monkeypatch):
    """User text is escaped where it enters a figure (short_name), not by a pass over every text in save().

    Such a pass turned the log axes' 10^{n} labels into '$\\mathdefault{10^{2}}$' and titles' line breaks into '\\n'.
    """
    from matplotlib.figure import Figure

    from imbstat.plots.figure import save, short_name

    assert short_name("$\\frac{$\x1b") == r"\$\frac{\$\x1b"
    fig = Figure()
    ax = fig.add_subplot()
    ax.set_yscale("log")
    ax.plot([1, 2], [10, 1000])
    ax.set_title("first line\nsecond line")
    monkeypatch.setattr(Figure, "clear", lambda self: None)  # keep the artists to look at them
    save(fig, tmp_path, "f.png")
    assert ax.get_title() == "first line\nsecond line"
    assert all(t.get_parse_math() for t in ax.get_yticklabels())
    assert any("10^{" in t.get_text() for t in ax.get_yticklabels())


def test_fg_bg_text_by_hand():
    from imbstat.text import fg_bg_text

    assert fg_bg_text(3 / 2832) == "1 : 944"  # 3 foreground anchors against 2832 background
    assert fg_bg_text(5 / 2) == "2.5 : 1"
    assert fg_bg_text(1.0) == "1 : 1"
    assert fg_bg_text(0.0) == "0 (no foreground)"
    assert fg_bg_text(float("nan")) == fg_bg_text(float("inf")) == "n/a"  # no background anchors
