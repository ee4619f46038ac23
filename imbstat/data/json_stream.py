"""Stream the top-level arrays of a large JSON object without holding the document in memory.

The file is read in blocks; numpy finds the brackets outside strings (a quote
escaped by an odd run of backslashes does not count) and their nesting depth,
so no Python code runs per byte or per element. For each top-level key whose
value is an array of objects or arrays, the caller receives byte spans of
whole elements, ``[elem,elem,...]``, ready for a typed decoder.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbstat.data.source import open_input
from imbstat.errors import ImbstatError

BLOCK_BYTES = 64 << 20
KEY_CONTEXT = 4096  # bytes kept between blocks to read the key of an array that opens at a block start
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_STEP = np.zeros(256, np.int64)  # depth change of each byte outside strings
_STEP[[ord("{"), ord("[")]] = 1
_STEP[[ord("}"), ord("]")]] = -1
_IS_BRACKET = _STEP != 0  # a bool lookup keeps the per-byte pass at one byte per byte


@dataclass(frozen=True)
class Span:
    key: str  # the top-level key whose array this is
    offset: int  # byte offset in the file of the span's first element
    text: bytes  # "[elem,elem,...]"
    array: int = -1  # byte offset in the file of the "[" of the array: a key given twice has two


class _Scanner:
    """Brackets outside strings, with the string state and depth carried from block to block."""

    def __init__(self) -> None:
        self.in_string = False
        self.backslashes = 0  # backslashes ending the previous block
        self.depth = 0

    def brackets(self, block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions of ``{}[]`` outside strings, and the depth before and after each."""
        a = np.frombuffer(block, np.uint8)
        quotes = np.flatnonzero(a == _QUOTE)
        # A quote after a backslash is escaped when the run of backslashes before it is odd: rare, so looped.
        after_bs = quotes[(quotes > 0) & (a[np.maximum(quotes - 1, 0)] == _BACKSLASH)]
        escaped = [q for q in after_bs.tolist() if self._run_before(a, q) % 2 == 1]
        if quotes.size and quotes[0] == 0 and self.backslashes % 2 == 1:
            escaped.append(0)
        if escaped:
            quotes = np.setdiff1d(quotes, escaped, assume_unique=True)
        # {, }, [, ] all satisfy (x & 0xD9) == 0x59 (as do Y, _, y, DEL): a cheap vectorised sieve, then
        # the exact lookup on what passes (a lookup on every byte is 3x slower)
        where = np.flatnonzero((a & 0xD9) == 0x59)
        where = where[_IS_BRACKET[a[where]]]
        outside = (np.searchsorted(quotes, where) + self.in_string) % 2 == 0
        where = where[outside]
        step = _STEP[a[where]]
        after = self.depth + np.cumsum(step)
        before = after - step
        self.in_string = bool((quotes.size + self.in_string) % 2)
        self.backslashes = self._run_before(a, len(a))
        if after.size:
            self.depth = int(after[-1])
        return where, before, after

    def _run_before(self, a: np.ndarray, end: int) -> int:
        """Backslashes just before ``end`` (counting into the previous block if they reach the start)."""
        start = end
        while start > 0 and a[start - 1] == _BACKSLASH:
            start -= 1
        return end - start + (self.backslashes if start == 0 else 0)


def top_level_arrays(path: Path, keys: set[str], block_bytes: int = BLOCK_BYTES) -> Iterator[Span]:
    """Spans of whole elements of the arrays under ``keys`` in the root object of ``path``, in file order."""
    scanner = _Scanner()
    current: str | None = None  # the key of the array being streamed
    array = -1  # the offset of its "["
    emitted = False  # whether a span of it was handed out
    pending = b""  # its bytes not handed out yet (or, between arrays, recent bytes to read a key from)
    pending_offset = 0
    position = 0  # file offset of the block
    with open_input(path, "a JSON file") as f:
        while block := f.read(block_bytes):
            where, before, after = scanner.brackets(block)
            cut = 0  # bytes of the block before `cut` are accounted for
            root = np.flatnonzero((before <= 1) | (after <= 1))  # few: values of the root object open and close
            for p, d0, d1 in zip(where[root].tolist(), before[root].tolist(), after[root].tolist(), strict=True):
                if d0 == 1 and d1 == 2 and block[p] == ord("["):
                    key = _key_before(pending + block[cut:p])
                    current, emitted, array = (key if key in keys else None), False, position + p
                    pending, pending_offset, cut = b"", position + p + 1, p + 1
                elif d0 == 2 and d1 == 1:
                    if current is not None:
                        spans = list(_span(current, pending_offset, pending, memoryview(block)[cut:p], array))
                        # an empty array still says that its key is there
                        yield from spans or ([] if emitted else [Span(current, pending_offset, b"[]", array)])
                    current, pending, cut = None, b"", p + 1
            if current is not None:
                # hand out the block's whole elements: up to the last one that closes at depth 2
                closing = where[(after == 2) & (before == 3)]
                closing = closing[closing >= cut]
                if closing.size:
                    end = int(closing[-1]) + 1
                    yield from _span(current, pending_offset, pending, memoryview(block)[cut:end], array)
                    pending, pending_offset, cut, emitted = b"", position + end, end, True
                pending += block[cut:]
            else:
                pending = _key_context(pending + block[cut:])
            position += len(block)
    if scanner.depth != 0 or scanner.in_string or position == 0:
        raise ImbstatError("JSON ends early; expected the rest of the document", path, f"byte {position}")


_SPACE = frozenset(b" \t\r\n")


def _span(key: str, offset: int, head: bytes, tail: memoryview, array: int) -> Iterator[Span]:
    """``head + tail`` is elements separated by commas, maybe led by one: as a JSON array.

    The text is assembled with one copy (a block is 64 MiB): leading and trailing blanks and a
    leading comma are found by index, not stripped off copies.
    """
    n = len(head) + len(tail)

    def at(i: int) -> int:
        return head[i] if i < len(head) else tail[i - len(head)]

    first = 0
    while first < n and at(first) in _SPACE:
        first += 1
    if first < n and at(first) == ord(","):
        first += 1
        while first < n and at(first) in _SPACE:
            first += 1
    last = n
    while last > first and at(last - 1) in _SPACE:
        last -= 1
    if last > first:
        cut_head = head[first:last] if first < len(head) else b""
        cut_tail = tail[max(first - len(head), 0) : max(last - len(head), 0)]
        yield Span(key, offset + first, b"".join((b"[", cut_head, cut_tail, b"]")), array)


_BLANKS = b" \t\r\n"  # JSON's whitespace


def _key_context(text: bytes) -> bytes:
    """The end of ``text`` that :func:`_key_before` reads as ``text`` itself: a key is never lost to blanks.

    At most KEY_CONTEXT bytes before the trailing blanks and colon, which are dropped but the colon.
    """
    body = text.rstrip(_BLANKS)
    colon = body.endswith(b":")
    if colon:
        body = body[:-1].rstrip(_BLANKS)
    return body[-KEY_CONTEXT:] + (b":" if colon else b"")


def _key_before(text: bytes) -> str:
    """The key of ``"key": [`` at the end of ``text``, unescaped as a JSON decoder reads it; "" when there is none.

    A key longer than KEY_CONTEXT bytes is read as ""; the keys looked for are short.
    """
    head = text.rstrip(_BLANKS)
    if not head.endswith(b":"):
        return ""
    head = head[:-1].rstrip(_BLANKS)[-KEY_CONTEXT:]
    if not head.endswith(b'"'):
        return ""
    start = len(head) - 1
    while (start := head.rfind(b'"', 0, start)) > 0:  # the opening quote: the last one not escaped
        run = start
        while run > 0 and head[run - 1] == ord("\\"):
            run -= 1
        if (start - run) % 2 == 0:
            break
    try:
        key = json.loads(head[max(start, 0) :])
    except ValueError:  # the key began before the context kept
        return ""
    return key if isinstance(key, str) else ""
