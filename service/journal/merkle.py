"""The journal's Merkle tree (RFC 9162 §2.1, as RFC 6962): tree heads, inclusion and consistency proofs.

Pure: no I/O. Leaf index = seq - 1, leaf input = the row's 32-byte hash, tree
size = the head's seq. Proofs are built from a `node(level, index)` callable
that answers the hash of a perfect subtree (2**level leaves starting at leaf
index * 2**level), so a caller can keep those in a table and answer any proof
in O(log² n) lookups instead of rehashing the whole journal.
"""

import hashlib
from collections.abc import Callable, Iterable, Sequence

Node = Callable[[int, int], bytes]  # (level, index) -> hash of a perfect, aligned subtree

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof was asked for sizes or an index that the tree does not have."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree(node: Node, start: int, end: int) -> bytes:
    """MTH(D[start:end]) where start is a multiple of the largest power of two <= end - start (as in every proof)."""
    n = end - start
    if n <= 0:
        raise ProofError(f"empty range {start}..{end}")
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return node(level, start >> level)
    k = _split(n)
    return node_hash(subtree(node, start, start + k), subtree(node, start + k, end))


def root(node: Node, size: int) -> bytes:
    """The tree head of the first `size` leaves."""
    return EMPTY_ROOT if size == 0 else subtree(node, 0, size)


def inclusion_path(node: Node, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1, leaf side first."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            path.append(subtree(node, start + k, end))
            end = start + k
        else:
            path.append(subtree(node, start, start + k))
            start += k
    path.reverse()
    return path


def consistency_path(node: Node, old: int, new: int) -> list[bytes]:
    """PROOF(old, D[0:new]) of RFC 6962 §2.1.2 (empty when the sizes are equal)."""
    if not 0 < old <= new:
        raise ProofError(f"no consistency proof from size {old} to size {new}")
    path: list[bytes] = []
    start, end, m, whole = 0, new, old, True
    while m != end - start:  # SUBPROOF(m, D[start:end], whole)
        k = _split(end - start)
        if m <= k:
            path.append(subtree(node, start + k, end))
            end = start + k
        else:
            path.append(subtree(node, start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        path.append(subtree(node, start, end))
    path.reverse()
    return path


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes], head: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does `path` prove that leaf hash `leaf` is at `index` in the tree with head `head`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == head


def verify_consistency(old: int, new: int, path: Sequence[bytes], old_head: bytes, new_head: bytes) -> bool:
    """RFC 9162 §2.1.4.2: does `path` prove the tree of size `new` extends the one of size `old`?"""
    if not 0 < old <= new:
        return False
    if old == new:
        return not path and old_head == new_head
    if not path:
        return False
    proof = list(path)
    if old & (old - 1) == 0:
        proof.insert(0, old_head)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_head and sr == new_head


def new_nodes(size: int, leaves: Iterable[bytes], node: Node) -> list[tuple[int, int, bytes]]:
    """The perfect subtrees (level, index, hash) completed by appending leaf inputs to a tree of `size` leaves.

    `node` answers the nodes already stored; the ones made here are looked up
    among themselves first.
    """
    made: dict[tuple[int, int], bytes] = {}
    out: list[tuple[int, int, bytes]] = []

    def get(level: int, index: int) -> bytes:
        return made.get((level, index)) or node(level, index)

    for data in leaves:
        index, level, h = size, 0, leaf_hash(data)
        made[(0, index)] = h
        out.append((0, index, h))
        while index & 1:  # a right child: its parent is complete now
            h = node_hash(get(level, index - 1), h)
            level, index = level + 1, index >> 1
            made[(level, index)] = h
            out.append((level, index, h))
        size += 1
    return out


class Frontier:
    """The tree's right edge while leaves stream in (O(log n) memory): the head after any number of leaves."""

    def __init__(self) -> None:
        self.size = 0
        self._peaks: list[bytes] = []  # hashes of the perfect subtrees, biggest first

    def append(self, data: bytes) -> None:
        h, n = leaf_hash(data), self.size
        while n & 1:
            h = node_hash(self._peaks.pop(), h)
            n >>= 1
        self._peaks.append(h)
        self.size += 1

    def root(self) -> bytes:
        if not self._peaks:
            return EMPTY_ROOT
        h = self._peaks[-1]
        for peak in reversed(self._peaks[:-1]):
            h = node_hash(peak, h)
        return h
