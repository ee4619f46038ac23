"""The pieces of a report section's HTML tables (each section's ``html`` is in ``imbstat/sections/<name>.py``;
the page around them is ``report/html.py``): every text from the dataset goes through :func:`e`.
"""

from __future__ import annotations

import html
import math
from typing import Any

HEAD_CLASSES, TAIL_CLASSES = 10, 5  # classes shown at the head and the tail of a section's class table


# --- pieces ---------------------------------------------------------------------------------------------------------


def score_cell(value: float | None, note: str = "") -> str:
    if value is None:
        return f'<span class="note">{e(note or "n/a")}</span>'
    return bar(value) + f'<span class="value">{value:.3f}</span>'


def bar(value: float) -> str:
    """A bar of ``value`` in [0, 1] drawn in CSS, green (balanced) to red (extreme)."""
    v = min(max(value, 0.0), 1.0)
    hue = round(120 * (1 - v))
    return f'<span class="bar"><span style="width:{100 * v:.1f}%;background:hsl({hue},60%,45%)"></span></span>'


def table(
    header: list[str],
    rows: list[list[Any]],
    cls: str = "",
    num: tuple[int, ...] = (),
    raw: bool = False,
    title: str = "",
) -> str:
    """A table; cells are escaped unless ``raw`` (cells already HTML), columns in ``num`` right-aligned."""

    def cell(tag: str, j: int, markup: str) -> str:
        align = ' class="num"' if j in num else ""
        return f"<{tag}{align}>{markup}</{tag}>"

    head = "".join(cell("th", j, e(h)) for j, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", j, v if raw else e(v)) for j, v in enumerate(r)) + "</tr>" for r in rows)
    caption = f"<h3>{e(title)}</h3>" if title else ""
    return f'<div>{caption}<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def fixed(value: Any) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def finite(value: float) -> float:
    """``value``, or 0 where it is NaN (a mean over no GT)."""
    return value if math.isfinite(value) else 0.0


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
