"""User text shown to a person (terminal, figures): as written, but never obeyed as control codes."""

from __future__ import annotations

import math


def visible(text: str) -> str:
    """``text`` as written, except each non-printable character as its Python repr escape.

    Non-printable as ``str.isprintable`` says: C0 and C1 controls (ESC -> ``\\x1b``,
    ``\\r``, ``\\n``, ``\\t``, DEL -> ``\\x7f``), format characters such as U+202E
    (``\\u202e``) and lone surrogates of undecodable file names (``\\udcff``).
    The result is one line that a terminal shows rather than obeys; backslashes stay
    as they are (so a literal ``\\x1b`` in a name reads the same: the JSON has the exact text).
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def fmt_metric(name: str, value: float) -> str:
    """A metric for a reader: fg:bg as ``1 : 944``, counts with thousands separators, fractions with 3 decimals."""
    if name in ("anchors.fg_bg_ratio", "anchors.sampled.fg_bg_ratio"):
        return fg_bg_text(value)
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) < 1:
        return f"{value:.3f}" if abs(value) >= 0.001 else f"{value:.2e}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def fg_bg_text(ratio: float) -> str:
    """The fg:bg ratio ``fg / bg`` for a reader: ``1 : 944``, ``2.5 : 1``; "n/a" without background anchors."""
    if not math.isfinite(ratio):
        return "n/a"
    if ratio <= 0:
        return "0 (no foreground)"
    return f"1 : {1 / ratio:,.0f}" if ratio <= 1 else f"{ratio:,.1f} : 1"
