"""User text shown to a person (terminal, figures): as written, but never obeyed as control codes."""

from __future__ import annotations


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
