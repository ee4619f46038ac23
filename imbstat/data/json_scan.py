"""The vectorised byte passes of :mod:`json_keys`: a census of key names, and the exact scan of keys and brackets.

Both run over the JSON text in blocks of numpy operations; no Python code runs
per byte or per key (but per key spelled with escapes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_BLOCK = 1 << 22  # per-block temporaries stay small and are reused: whole-buffer ones cost page faults
_WINDOW = 16  # bytes read at once after a key's opening quote: longer names are compared in a second step
_QUOTE, _BACKSLASH, _COLON = ord('"'), ord("\\"), ord(":")
_STEP = np.zeros(256, np.int64)  # depth change of each byte outside strings
_STEP[[ord("{"), ord("[")]] = 1
_STEP[[ord("}"), ord("]")]] = -1
_IS_BRACKET = _STEP != 0
_IS_SPACE = np.zeros(256, bool)
_IS_SPACE[list(b" \t\r\n")] = True
SPACES = re.compile(rb"[ \t\r\n]*")


@dataclass(frozen=True)
class Scan:
    """Keys with a tracked name at depth <= max_depth, and the brackets that move between those depths."""

    key_pos: np.ndarray  # [K] int64 offset of the key's opening quote, ascending
    key_name: np.ndarray  # [K] int64 index into the names
    key_depth: np.ndarray  # [K] int64 depth inside the object holding the key (the outermost value: 1)
    value_pos: np.ndarray  # [K] int64 offset of the first byte of the key's value
    bracket_pos: np.ndarray  # [B] int64 brackets outside strings with min(before, after) <= max_depth
    before: np.ndarray  # [B] int64 depth before the bracket
    after: np.ndarray  # [B] int64 depth after it

    def openers(self, depth: int) -> np.ndarray:
        """[O] offsets of the brackets that open a value at ``depth`` (``after == depth``), ascending."""
        return self.bracket_pos[(self.after == depth) & (self.before == depth - 1)]

    def container(self, depth: int) -> np.ndarray:
        """[K] row in ``openers(depth)`` of the object holding each key (-1 before the first).

        A key at ``depth`` lies in the last value opened at ``depth`` before it.
        """
        return np.searchsorted(self.openers(depth), self.key_pos) - 1


def scan_keys(buf: bytes, names: list[str], max_depth: int, depth: int = 0) -> Scan:
    """The keys named in ``names`` at depth <= ``max_depth`` of the JSON text ``buf``, which starts at ``depth``.

    ``buf`` must be well-formed JSON (the caller decoded it): then every quote
    not escaped opens or closes a string, and strings pair up in order.
    """
    a = np.frombuffer(buf, np.uint8)
    matcher = _Names(names)
    start_depth, open_quote = depth, -1  # open_quote: the opening quote of a string still open at the block's end
    brackets: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    keys: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    mask, masked = np.empty(_BLOCK, bool), np.empty(_BLOCK, np.uint8)  # reused for every block
    for lo in range(0, len(a), _BLOCK):
        block = a[lo : lo + _BLOCK]
        m, t = mask[: block.size], masked[: block.size]
        quotes = _unescaped(a, np.flatnonzero(np.equal(block, _QUOTE, out=m)) + lo)
        in_string = open_quote >= 0
        # {, }, [, ] all satisfy (x & 0xD9) == 0x59 (as do Y, _, y, DEL): a cheap sieve, then the exact lookup
        np.bitwise_and(block, 0xD9, out=t)
        where = np.flatnonzero(np.equal(t, 0x59, out=m))
        where = where[_IS_BRACKET[block[where]]] + lo
        where = where[(np.searchsorted(quotes, where) + in_string) % 2 == 0]
        step = _STEP[a[where]]
        after = depth + np.cumsum(step)
        before = after - step
        if after.size:
            depth = int(after[-1])
        near = np.minimum(before, after) <= max_depth
        brackets.append((where[near], before[near], after[near]))

        if in_string:
            quotes = np.r_[open_quote, quotes]
        open_quote = int(quotes[-1]) if quotes.size % 2 else -1
        keys.append(matcher.keys(buf, a, quotes[0 : quotes.size - 1 : 2], quotes[1::2]))

    bracket_pos, before, after = (np.concatenate(c) for c in zip(*brackets, strict=True)) if brackets else [_EMPTY] * 3
    key_pos, key_name, value_pos = (np.concatenate(c) for c in zip(*keys, strict=True)) if keys else [_EMPTY] * 3
    # depth at a key: after the last kept bracket before it (any bracket dropped since lies deeper than max_depth)
    last = np.searchsorted(bracket_pos, key_pos) - 1
    key_depth = np.where(last >= 0, after[np.maximum(last, 0)] if after.size else 0, start_depth)
    near = key_depth <= max_depth
    return Scan(key_pos[near], key_name[near], key_depth[near], value_pos[near], bracket_pos, before, after)


_EMPTY = np.zeros(0, np.int64)


def _unescaped(a: np.ndarray, quotes: np.ndarray) -> np.ndarray:
    """``quotes`` without those escaped by an odd run of backslashes before them."""
    after_bs = quotes[(quotes > 0) & (a[np.maximum(quotes - 1, 0)] == _BACKSLASH)]
    if not after_bs.size:
        return quotes
    lo, hi = int(after_bs[0]) - 1, int(after_bs[-1])
    bs = np.flatnonzero(a[lo:hi] == _BACKSLASH) + lo  # the backslashes among the candidates
    first = np.r_[True, np.diff(bs) != 1]
    run_start = bs[first][np.cumsum(first) - 1]  # [bs] the first backslash of each one's run
    start = run_start[np.searchsorted(bs, after_bs - 1)]
    if start[0] == lo:  # the first run may begin before lo
        start[start == lo] = _run_start(a, lo)
    escaped = after_bs[(after_bs - start) % 2 == 1]
    return np.setdiff1d(quotes, escaped, assume_unique=True) if escaped.size else quotes


def _run_start(a: np.ndarray, end: int) -> int:
    """The first offset of the run of backslashes that ends at ``end`` (looked for in growing steps)."""
    step = 64
    while end > 0:
        chunk = a[max(end - step, 0) : end]
        other = np.flatnonzero(chunk != _BACKSLASH)
        if other.size:
            return end - chunk.size + int(other[-1]) + 1
        end -= chunk.size
        step *= 2
    return 0


def _skip_spaces(buf: bytes, a: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """[P] the first offset at or after each of ``pos`` that is not JSON whitespace (len(a) at the end)."""
    pos = pos.copy()
    for _ in range(3):  # blanks between tokens are short: a few vectorised steps, then a regex per straggler
        inside = np.flatnonzero(pos < len(a))
        blank = inside[_IS_SPACE[a[pos[inside]]]]
        if not blank.size:
            return pos
        pos[blank] += 1
    for i in blank.tolist():
        pos[i] = SPACES.match(buf, int(pos[i])).end()
    return pos


class _Names:
    """Which strings are keys with one of the given names: compared 16 bytes at a time, no loop per string."""

    def __init__(self, names: list[str]) -> None:
        self.names = {n.encode(): i for i, n in enumerate(names)}
        self.longest = max(map(len, self.names))
        self.length = np.zeros(self.longest + 2, bool)  # [L] a name is L bytes long (the last entry: too long)
        self.length[[len(n) for n in self.names]] = True
        # each name as its first _WINDOW bytes (zero-padded) with a mask of the bytes that count
        self.head = np.zeros((len(names), _WINDOW), np.uint8)
        self.mask = np.zeros((len(names), _WINDOW), np.uint8)
        for n, i in self.names.items():
            self.head[i, : min(len(n), _WINDOW)] = np.frombuffer(n[:_WINDOW], np.uint8)
            self.mask[i, : min(len(n), _WINDOW)] = 0xFF
        self.head, self.mask = self.head.view(np.uint64), self.mask.view(np.uint64)  # [names, 2]
        self.spelled = list(self.names)
        self.by_length: dict[int, list[int]] = {}
        for n, i in self.names.items():
            self.by_length.setdefault(len(n), []).append(i)

    def keys(self, buf: bytes, a: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, ...]:
        """Of the strings ``buf[start:end + 1]``: (quote offset, name, value offset) of the keys with a name."""
        size = end - start - 1
        pick = self.length[np.minimum(size, self.longest + 1)]
        # a string holding a backslash may spell a name with escapes ("bb\u006fx"): decoded one by one below
        lo, hi = (int(start[0]), int(end[-1])) if start.size else (0, 0)
        if buf.find(b"\\", lo, hi) >= 0:
            backslashes = np.flatnonzero(a[lo:hi] == _BACKSLASH) + lo
            escaped = np.searchsorted(backslashes, start) < np.searchsorted(backslashes, end)
            pick |= escaped
        else:
            escaped = np.zeros(start.size, bool)
        pick = np.flatnonzero(pick)
        colon = end[pick] + 1
        is_key = np.zeros(pick.size, bool)
        inside = colon < len(a)
        is_key[inside] = a[colon[inside]] == _COLON
        blank = np.flatnonzero(inside & ~is_key)
        blank = blank[_IS_SPACE[a[colon[blank]]]]
        if blank.size:  # "key" : value
            colon[blank] = _skip_spaces(buf, a, colon[blank])
            is_key[blank] = (colon[blank] < len(a)) & (a[np.minimum(colon[blank], len(a) - 1)] == _COLON)
        pick, colon = pick[is_key], colon[is_key]

        name = np.full(pick.size, -1, np.int64)
        plain = np.flatnonzero(~escaped[pick])
        name[plain] = self._match(buf, a, start[pick[plain]] + 1, size[pick[plain]])
        for row in np.flatnonzero(escaped[pick]).tolist():
            s, e = int(start[pick[row]]), int(end[pick[row]])
            try:
                name[row] = self.names.get(json.loads(buf[s : e + 1]).encode(), -1)
            except ValueError:  # not valid JSON text: the decoder refused the document already
                pass
        found = name >= 0
        return start[pick[found]], name[found], _skip_spaces(buf, a, colon[found] + 1)

    def _match(self, buf: bytes, a: np.ndarray, first: np.ndarray, size: np.ndarray) -> np.ndarray:
        """[S] the name spelled by ``size`` bytes from each of ``first`` (no escapes), -1 for none."""
        name = np.full(first.size, -1, np.int64)
        near_end = first > len(a) - _WINDOW
        for row in np.flatnonzero(near_end).tolist():  # too near the end for a whole window
            f = int(first[row])
            name[row] = self.names.get(buf[f : f + int(size[row])], -1)
        rows = np.flatnonzero(~near_end)
        if not rows.size:
            return name
        text = np.ascontiguousarray(sliding_window_view(a, _WINDOW)[first[rows]]).view(np.uint64)  # [S, 2]
        for length, ids in self.by_length.items():
            at = np.flatnonzero(size[rows] == length)
            masked = text[at] & self.mask[ids[0]]  # names of one length share a mask
            for i in ids:
                same = at[(masked == self.head[i]).all(axis=1)]
                if length > _WINDOW:  # compare the rest, one by one (no such name is tracked today)
                    rest = self.spelled[i][_WINDOW:]
                    same = same[[buf[f + _WINDOW : f + length] == rest for f in first[rows[same]].tolist()]]
                name[rows[same]] = i
        return name


class Census:
    """How many keys of each name a stretch of JSON text holds: a necessary condition for no repeats.

    Each present field is a key at least once in its record, so a stretch whose keys
    of a name number no more than the records that hold it repeats none of them.
    The count may overcount, never undercount: a key is the string before a ``:``,
    and its name is told by its length, first and last byte (other keys that share
    them are counted too). A key written with a backslash could spell any name
    (``"bb\\u006fx"``): it counts as ``escaped``, which no stretch may hold.
    One pass over the bytes finds the quotes: cheaper than the exact scan by its
    brackets, its depths and its key table.
    """

    _SIZES = 32  # names are shorter: a longer key is told apart by its length

    def __init__(self, buf: bytes, names: list[str], marked: int) -> None:
        """Count the keys of ``buf``; keep where the keys named ``names[:marked]`` are."""
        assert all(0 < len(n.encode()) < self._SIZES for n in names) and len(names) < 127
        table = np.zeros(self._SIZES << 16, np.int8)  # (size, first, last) -> 1 + name, 0 for none
        for i, name in enumerate(names):
            b = name.encode()
            table[(len(b) << 16) | (b[0] << 8) | b[-1]] = i + 1
        a = np.frombuffer(buf, np.uint8)
        self.names = names
        self.n, self.starts = len(a), np.arange(0, len(a) + _BLOCK, _BLOCK)[: -(-len(a) // _BLOCK) + 1]
        counts, hits, hit_names, keys = [], [], [], {}
        self.escaped = 0
        last_quote, slash_after = -1, False  # the last quote so far, and whether a backslash follows it
        mask = np.empty(_BLOCK, bool)
        for b, lo in enumerate(self.starts[:-1].tolist()):
            block = a[lo : lo + _BLOCK]
            quotes = np.flatnonzero(np.equal(block, _QUOTE, out=mask[: block.size])) + lo
            slashed = buf.find(b"\\", max(lo - 1, 0), lo + block.size) >= 0  # lo - 1: may escape a quote at lo
            if slashed:
                quotes = _unescaped(a, quotes)
            if not quotes.size:
                counts.append(np.zeros(len(names), np.int64))
                slash_after |= slashed
                continue
            # a key's closing quote is followed by ":" (maybe after blanks); its opening quote is the quote before
            follow = a[np.minimum(quotes + 1, len(a) - 1)]
            is_key = follow == _COLON
            blank = np.flatnonzero(follow <= 32)  # the blanks (and bytes no JSON text has there)
            if blank.size:
                colon = _skip_spaces(buf, a, quotes[blank] + 1)
                is_key[blank] = a[np.minimum(colon, len(a) - 1)] == _COLON
            at = np.flatnonzero(is_key)
            opening, closing = quotes[at - 1], quotes[at]  # the quote before each
            if at.size and at[0] == 0:
                opening[0] = last_quote
                if last_quote < 0:  # (only in text that is no JSON)
                    opening, closing = opening[1:], closing[1:]
            last_quote = int(quotes[-1])
            size = np.minimum(closing - opening - 1, self._SIZES - 1)
            name = table[(size << 16) | (a[opening + 1].astype(np.int64) << 8) | a[closing - 1]]
            if (slashed or slash_after) and closing.size:
                backslashes = np.flatnonzero(a[lo : closing[-1]] == _BACKSLASH) + lo
                if slash_after:  # a backslash between the last quote of an earlier block and lo
                    backslashes = np.r_[lo - 1, backslashes]
                wild = np.searchsorted(backslashes, opening) < np.searchsorted(backslashes, closing)
                self.escaped += int(wild.sum())
            slash_after = slashed and buf.find(b"\\", last_quote + 1, lo + block.size) >= 0
            counts.append(np.bincount(name, minlength=len(names) + 1)[1:])
            root = (name > 0) & (name <= marked)
            if root.any():  # a block that holds a root key: its keys are kept to count part of it
                hits.append(np.stack([opening[root], closing[root]], axis=1))
                hit_names.append(name[root] - 1)
                keys[b] = (closing, name - 1)
        self.counts = np.asarray(counts).reshape(-1, len(names))  # [blocks, names]
        self.hits = np.concatenate(hits) if hits else _EMPTY.reshape(0, 2)  # [H, 2] quotes of the root keys
        self.hit_name = np.concatenate(hit_names) if hit_names else _EMPTY
        self.keys = keys

    def unique(self, lo: int, hi: int, fields: np.ndarray, present: Sequence[int]) -> bool:
        """Whether the keys closed in ``buf[lo:hi]`` named ``names[fields]`` number ``present``, none escaped.

        ``lo`` and ``hi`` are 0, ``len(buf)`` or the closing quote of a key in ``names[:marked]``.
        """
        if self.escaped:
            return False
        first, last = np.searchsorted(self.starts, [lo, hi], side="right") - 1
        total = self.counts[first + 1 : last].sum(axis=0) if last > first + 1 else np.zeros(self.counts.shape[1])
        for b in {int(first), int(last)} - {len(self.starts) - 1}:
            if b in self.keys:
                closing, name = self.keys[b]
                inside = (closing >= lo) & (closing < hi) & (name >= 0)
                total = total + np.bincount(name[inside], minlength=self.counts.shape[1])
            elif lo <= self.starts[b] and min(self.starts[b + 1], self.n) <= hi:
                total = total + self.counts[b]
            else:
                raise AssertionError("a cut inside a block without a root key")
        return bool((total[fields] == np.asarray(present)).all())
