"""Stream the top-level arrays of a large JSON object without holding the document in memory.

The file is read in blocks; numpy finds the brackets outside strings (a quote
escaped by an odd run of backslashes does not count) and their nesting depth,
so no Python code runs per byte or per element. For each top-level key whose
value is an array, the caller receives byte spans of whole elements,
``[elem,elem,...]``, ready for a decoder; everything else (the "skeleton": the
root object with those arrays emptied) is kept to be decoded at the end.

Every byte of the file thus reaches the decoder as the whole document would,
so that streaming accepts and refuses the same documents, at the same byte.
"""

from __future__ import annotations

import bisect
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from imbstat.data.source import open_input

BLOCK_BYTES = 64 << 20
KEY_CONTEXT = 4096  # skeleton bytes kept to read the key of an array (a longer key is none of ours)
# Deeper nesting is refused: a COCO document is about 5 deep, and the decoders recurse (msgspec and
# json give RecursionError near 1000, less the caller's stack).
MAX_DEPTH = 512
# Bytes of the document read past a cut (an array's "[", a byte that makes the document malformed):
# a literal cut short ("n[", "tru\0") then fails as it does in the document, not as truncated.
LOOKAHEAD = 64
_QUOTE, _BACKSLASH = ord('"'), ord("\\")
_BLANKS = b" \t\r\n"  # JSON's whitespace
_STEP = np.zeros(256, np.int64)  # depth change of each byte outside strings
_STEP[[ord("{"), ord("[")]] = 1
_STEP[[ord("}"), ord("]")]] = -1
_IS_BRACKET = _STEP != 0  # a bool lookup keeps the per-byte pass at one byte per byte
_STEP8 = _STEP.astype(np.int8)
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_PAD = 8  # blanks after a span: msgspec reads at most 6 bytes past a literal's or an escape's start
_SCALAR_START = frozenset(b'"-0123456789tfn')  # the bytes a JSON value other than an object or array starts with


@dataclass(frozen=True)
class Span:
    key: str  # the top-level key whose array this is
    base: int  # file offset of text[0]: byte k of text is at base + k (the brackets added here excepted)
    text: bytes  # "[elem,elem,...]", without its "]" when the file ends inside the array
    typed: bool  # elements of one of the caller's keys; False: decode only to check the JSON (other keys,
    # or a text made to fail where the document does, e.g. a missing ',' between two spans)
    open: bool = False  # the reading ended inside the array: text is cut there, not at an element's end
    array: int = -1  # file offset of the array's "[": a key given twice has two arrays


class _Scanner:
    """Brackets outside strings, with the string state and depth carried from block to block."""

    def __init__(self) -> None:
        self.in_string = False
        self.backslashes = 0  # backslashes ending the previous block
        self.depth = 0

    def brackets(self, block: bytes | memoryview) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions of ``{}[]`` outside strings, and the depth before and after each."""
        a = np.frombuffer(block, np.uint8)
        quotes, where = _structure(a)
        # A quote after a backslash is escaped when the run of backslashes before it is odd: rare, so looped.
        after_bs = quotes[(quotes > 0) & (a[np.maximum(quotes - 1, 0)] == _BACKSLASH)]
        escaped = [q for q in after_bs.tolist() if self._run_before(a, q) % 2 == 1]
        if quotes.size and quotes[0] == 0 and self.backslashes % 2 == 1:
            escaped.append(0)
        if escaped:
            quotes = np.setdiff1d(quotes, escaped, assume_unique=True)
        # the sieve's bytes (see _structure), then the exact lookup on what passes (a lookup on every byte is 3x slower)
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


_CHUNK = 1 << 22  # per-chunk temporaries stay small and are reused: whole-block ones (64 MiB) cost page faults


def _structure(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[Q] offsets of the quotes in ``a``, and [S] of the bytes that may be brackets, chunk by chunk.

    {, }, [, ] all satisfy (x & 0xD9) == 0x59 (as do Y, _, y, DEL): a cheap vectorised sieve.
    """
    mask, masked = np.empty(min(a.size, _CHUNK), bool), np.empty(min(a.size, _CHUNK), np.uint8)
    quotes, sieved = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
    for lo in range(0, a.size, _CHUNK):
        chunk = a[lo : lo + _CHUNK]
        m, t = mask[: chunk.size], masked[: chunk.size]
        quotes.append(np.flatnonzero(np.equal(chunk, _QUOTE, out=m)) + lo)
        np.bitwise_and(chunk, 0xD9, out=t)
        sieved.append(np.flatnonzero(np.equal(t, 0x59, out=m)) + lo)
    return np.concatenate(quotes), np.concatenate(sieved)


def too_deep(raw: bytes, block_bytes: int = BLOCK_BYTES) -> int | None:
    """Byte offset of the first bracket of ``raw`` nested deeper than :data:`MAX_DEPTH`; None if none is.

    A whole-file load runs it only where msgspec under a lowered recursion limit fails
    (coco_decode.decode_shallow). Per block, C byte passes drop
    escapes, every byte but quotes and brackets, and empty strings (removing two adjacent quotes
    leaves every other byte on its side of its string), and numpy walks the few bytes left.
    Only a document found too deep is scanned again, by block, to place the bracket.
    """
    depth = inside = 0  # carried from piece to piece: the depth, whether in a string
    start = 0
    while start < len(raw):
        end = min(start + block_bytes, len(raw))
        while end < len(raw) and raw[end - 1] == _BACKSLASH:  # an escape is not split
            end += 1
        piece = raw[start:end]
        if b"\\" in piece:  # left to right, as JSON pairs escapes: \\ then \"
            piece = piece.replace(b"\\\\", b"").replace(b'\\"', b"")
        a = np.frombuffer(piece.translate(None, _NOT_STRUCTURE).replace(b'""', b""), np.uint8)
        step = _STEP8[a]
        quotes = a == _QUOTE
        if a.size and (inside or quotes.any()):  # brackets inside the strings that are left do not count
            parity = np.cumsum(quotes, dtype=np.uint8) + np.uint8(inside)  # wraps by 256: parity kept
            step[(parity & 1).view(bool)] = 0
            inside = int(parity[-1] & 1)
        if a.size:
            levels = np.cumsum(step, dtype=np.int32) + depth
            if levels.max() > MAX_DEPTH:
                break
            depth = int(levels[-1])
        start = end
    else:
        return None
    scanner, view = _Scanner(), memoryview(raw)
    for start in range(0, len(raw), block_bytes):
        where, _, after = scanner.brackets(view[start : start + block_bytes])
        deep = np.flatnonzero(after > MAX_DEPTH)
        if deep.size:
            return start + int(where[deep[0]])
    return None  # not reached: both passes see the same brackets


class RootArrays:
    """The arrays under the root object's keys as :class:`Span` s, in file order, and the rest.

    Iterating reads the file. The reading stops early, after the byte that makes the document
    malformed whatever follows (a NUL byte, a byte after the root's end that is not whitespace,
    a root that is not an object), or before a bracket nested deeper than :data:`MAX_DEPTH`
    (then :attr:`too_deep` holds its offset). When the file (or the reading) ends inside an
    array, the last span has no closing bracket. Afterwards :meth:`skeleton` is the rest of
    what was read: the document with those arrays empty, its byte k at :meth:`file_offset` (k).
    """

    def __init__(self, path: Path, keys: set[str], block_bytes: int = BLOCK_BYTES):
        self.path, self.keys, self.block_bytes = path, keys, block_bytes
        self.end = 0  # file offset where the reading stopped
        self.too_deep: int | None = None
        self._chunks: list[bytes] = []  # the skeleton
        self._starts: list[int] = []  # skeleton offset of each chunk
        self._offsets: list[int] = []  # file offset of each chunk
        self._size = 0
        self._recent = b""  # the skeleton's last bytes up to its last non-blank one, to read a key from
        self._blanks = 0  # the blanks after them
        self._key: str | None = None  # the array being streamed (None: the skeleton is being read)
        self._array = -1  # the file offset of its "["
        self._emitted = False  # whether a span of it was handed out
        self._pending: list[bytes] = []  # its bytes not handed out yet
        self._pending_offset = 0
        self._head = b""  # its first bytes, to decode the skeleton as the document goes on
        self._root = "none"  # "none" (no byte yet), "open", "closed"
        self._file_size = 0

    def skeleton(self) -> bytes:
        """The skeleton read so far; inside an array, followed by the array's first bytes (its
        last number cut off, which could read as malformed), as the document goes on there."""
        text = b"".join(self._chunks)
        return text if self._key is None else text + self._head.rstrip(b"0123456789+-.eE")

    def file_offset(self, k: int) -> int:
        """The file offset of skeleton byte ``k`` (past its end: of the bytes that follow its last one)."""
        if not self._starts:
            return k
        i = bisect.bisect_right(self._starts, k) - 1
        return self._offsets[i] + k - self._starts[i]

    def __iter__(self) -> Iterator[Span]:
        scanner = _Scanner()
        position = 0  # file offset of the block
        with open_input(self.path, "a JSON file") as f:
            self._file_size = os.fstat(f.fileno()).st_size
            while block := f.read(self.block_bytes):
                where, before, after = scanner.brackets(block)
                stop = self._stop(block, where, before, after, position)
                if stop is not None:
                    keep = where < stop
                    where, before, after = where[keep], before[keep], after[keep]
                    if self.too_deep is None:  # the bytes that follow go as they are, to be read past the stop
                        block = block[: stop + LOOKAHEAD] + f.read(max(stop + LOOKAHEAD - len(block), 0))
                    else:
                        block = block[:stop]
                yield from self._read(block, where, before, after, position)
                position += len(block)
                if stop is not None:
                    break
        self.end = position
        if self._key is not None:  # the reading ended inside an array
            span = self._span(b"".join(self._pending), b"", self._pending_offset, "open")
            span = span or Span(self._key, self._pending_offset - 1, b"[", False, array=self._array)
            yield dataclasses.replace(span, open=True)

    def _stop(
        self, block: bytes, where: np.ndarray, before: np.ndarray, after: np.ndarray, position: int
    ) -> int | None:
        """Where the reading of ``block`` stops (its brackets from there on are not followed), or None.

        At a byte that makes the document malformed, or an array that is no key's value, the
        reading stops after a few more bytes (the decoder may read past that byte to fail);
        at a too-deep bracket, before it.
        """
        stops = []
        nul = block.find(b"\0")  # never valid in JSON, and what a truncated file is padded with
        if nul >= 0:
            stops.append(nul + 1)
        if self._root == "none":
            first = len(block) - len(block.lstrip(_BLANKS))
            if first < len(block):
                self._root = "open"
                if block[first] != ord("{") and block[first] not in _SCALAR_START:
                    stops.append(first + 1)  # an array or no JSON value: the decoder says which at once
        closed = 0 if self._root == "closed" else None
        events = np.flatnonzero((before <= 1) | (after <= 1))  # few: values of the root object open and close
        ends = events[(before[events] == 1) & (after[events] == 0)]  # the root object's closing bracket
        if closed is None and ends.size:
            closed = int(where[ends[0]]) + 1
        if closed is not None:  # only whitespace may follow
            rest = block[closed:]
            blank = len(rest) - len(rest.lstrip(_BLANKS))
            if blank < len(rest):
                stops.append(closed + blank + 1)
        for k, e in enumerate(events.tolist()):  # an array must follow "key": to be cut out of the skeleton
            p = int(where[e])
            if before[e] == 1 and after[e] == 2 and block[p] == ord("["):
                # from the root-level bracket before it in the block, or else from the skeleton's end
                last = _last_nonblank(block, int(where[events[k - 1]]) if k else 0, p) or self._recent[-1:]
                if last != b":":
                    stops.append(p)
                    break
        deep = np.flatnonzero(after > MAX_DEPTH)
        if deep.size:
            stops.append(int(where[deep[0]]))
        stop = min(stops) if stops else None
        if deep.size and stop == int(where[deep[0]]):
            self.too_deep = position + stop
        if ends.size and (stop is None or stop > where[ends[0]]):
            self._root = "closed"
        return stop

    def _read(
        self, block: bytes, where: np.ndarray, before: np.ndarray, after: np.ndarray, position: int
    ) -> Iterator[Span]:
        if self._key is not None and len(self._head) < LOOKAHEAD:
            self._head += block[: LOOKAHEAD - len(self._head)]
        cut = 0  # bytes of the block before `cut` are accounted for
        view = memoryview(block)
        root = np.flatnonzero((before <= 1) | (after <= 1))  # few: values of the root object open and close
        for p, d0, d1 in zip(where[root].tolist(), before[root].tolist(), after[root].tolist(), strict=True):
            if d0 == 1 and d1 == 2 and block[p] == ord("[") and self._key is None:
                self._add(block[cut : p + 1], position + cut)
                self._key, self._head = _key_before(self._recent[:-1]), block[p + 1 : p + 1 + LOOKAHEAD]
                self._array = position + p
                self._emitted, self._pending, self._pending_offset, cut = False, [], position + p + 1, p + 1
            elif d0 == 2 and d1 == 1 and self._key is not None:
                # closed by its own byte: a "}" there is the decoder's error at that byte, as in the document
                span = self._span(b"".join(self._pending), view[cut:p], self._pending_offset, block[p : p + 1])
                if span is not None:
                    yield span
                self._key, self._pending, cut = None, [], p  # the closing bracket goes to the skeleton
        if self._key is not None:
            # hand out the block's whole elements: up to the last one that closes at depth 2
            closing = where[(after == 2) & (before == 3)]
            closing = closing[closing >= cut]
            if closing.size:
                end = int(closing[-1]) + 1
                span = self._span(b"".join(self._pending), view[cut:end], self._pending_offset, "element")
                if span is not None:
                    yield span
                self._emitted, self._pending, self._pending_offset, cut = True, [], position + end, end
            if cut < len(block):
                self._pending.append(block[cut:])
        else:
            self._add(block[cut:], position + cut)

    def _add(self, part: bytes, offset: int) -> None:
        """Append ``part`` (at file ``offset``) to the skeleton."""
        if part:
            self._chunks.append(part)
            self._starts.append(self._size)
            self._offsets.append(offset)
            self._size += len(part)
            # up to its last non-blank byte, and without the blanks before a ":" or "[" that ends it,
            # so that no run of blanks (before the colon, after it) pushes the key out
            last = _blank_start(part, len(part))
            end, marks = last, b""
            for mark in b"[:":  # "key" : [ read backwards
                if end and part[end - 1] == mark:
                    end, marks = _blank_start(part, end - 1), bytes((mark,)) + marks
            if end:  # the blanks before it are kept as spaces (the only blank a string may hold), a context's worth
                blanks = b" " * min(self._blanks, KEY_CONTEXT)
                self._recent, self._blanks = (
                    (self._recent + blanks + part[max(end - KEY_CONTEXT, 0) : end])[-KEY_CONTEXT:],
                    0,
                )
            if marks:
                self._recent, self._blanks = self._recent[-KEY_CONTEXT:] + marks, 0
            self._blanks += len(part) - last

    def _span(self, head: bytes, tail: bytes | memoryview, offset: int, ends: str | bytes) -> Span | None:
        """The span of ``head + tail``, the array's text since its "[" or its last span, at file ``offset``.

        ``ends`` is "element" (the text ends with a whole element), "open" (the reading ended)
        or the byte that closes the array. After a first span the text must go on with ","
        and a value: the decoder sees it as the document has it, or fails where it does.
        The text is assembled with one copy (a block is 64 MiB).
        """
        assert self._key is not None
        key, typed = self._key, self._key in self.keys
        closed = isinstance(ends, bytes)
        # Blanks after the closing bracket, as many as the file has bytes after it (up to 8): msgspec
        # decides "truncated" by the bytes left, so a literal cut there ("n}") or a "\ud800" near the end
        # then fails as in the document.
        after = offset + len(head) + len(tail)  # the file offset of the closing bracket
        pad = b" " * min(_PAD, max(self._file_size - after - 1, 0))
        close = ends + pad if closed else b"]" + pad if ends == "element" else b""
        if not self._emitted:
            return Span(key, offset - 1, b"".join((b"[", head, tail, close)), typed, array=self._array)
        n = len(head) + len(tail)
        first = _nonblank(head, tail, 0)
        if first == n and ends == b"]":  # only whitespace, then the end
            return None
        if first == n and not closed:  # nothing yet
            return Span(key, offset - 1, b"[", False, array=self._array)
        comma = first < n and (head[first] if first < len(head) else tail[first - len(head)]) == ord(",")
        if comma and (not closed or _nonblank(head, tail, first + 1) < n):
            rest = (head[first + 1 :], tail) if first < len(head) else (tail[first + 1 - len(head) :],)
            return Span(key, offset + first, b"".join((b"[", *rest, close)), typed, array=self._array)
        # no "," after the previous element, one before the "]", or a "}" for "]": fail as the decoder does there
        # ([] ends as an element does)
        return Span(key, offset - 3, b"".join((b"[[]", head, tail, close)), False, array=self._array)


def _nonblank(head: bytes, tail: bytes | memoryview, start: int) -> int:
    """Index of the first byte of ``head + tail`` from ``start`` that is not whitespace (the length if none)."""
    i = start
    for part, base in ((head, 0), (tail, len(head))):
        while i - base < len(part):
            if i < base:
                i = base
            piece = bytes(part[i - base : i - base + 4096])  # blanks are few; a long run is read in pieces
            blank = len(piece) - len(piece.lstrip(_BLANKS))
            if blank < len(piece):
                return i + blank
            i += len(piece)
    return max(i, len(head) + len(tail))


def _blank_start(data: bytes, end: int) -> int:
    """The start of the run of whitespace that ends at ``end`` in ``data`` (``end`` if there is none)."""
    while end > 0:
        piece = data[max(end - 4096, 0) : end]  # blanks are few; a long run is read in pieces
        body = len(piece.rstrip(_BLANKS))
        if body:
            return end - len(piece) + body
        end -= len(piece)
    return 0


def _last_nonblank(block: bytes, start: int, end: int) -> bytes:
    """The last byte of ``block[start:end]`` that is not whitespace; b"" if there is none."""
    piece = block[max(start, end - 64) : end].rstrip(_BLANKS)
    if not piece and end - start > 64:  # a long run of blanks
        piece = block[start:end].rstrip(_BLANKS)
    return piece[-1:]


def _key_before(text: bytes) -> str:
    """The key of ``"key":`` at the end of ``text``; "" when there is none."""
    head = text.rstrip(_BLANKS)
    if not head.endswith(b":"):
        return ""
    head = head[:-1].rstrip(_BLANKS)
    if not head.endswith(b'"'):
        return ""
    start = len(head) - 1
    while True:  # the opening quote: one after an even run of backslashes
        start = head.rfind(b'"', 0, start)
        if start < 0:
            return ""  # longer than the context: not one of the caller's keys
        if (start - len(head[:start].rstrip(b"\\"))) % 2 == 0:
            break
    try:
        return msgspec.json.decode(head[start:], type=str)  # escapes such as \u0061 as the decoder reads them
    except msgspec.DecodeError:
        return ""
