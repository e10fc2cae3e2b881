"""The journal's Merkle tree in journal_merkle (sql/022): extend it to the head, read heads and proofs.

The nodes are written once, from the row hashes as they are when the tree
reaches them; verification never trusts them (chain.verify recomputes the
heads from the rows), they only make proofs cheap.
"""

import dataclasses

import psycopg

from service.db.query import one
from service.journal import merkle

_LOCK = "SELECT pg_advisory_xact_lock(hashtext('gatehouse:journal_merkle'))"


def stored_size(conn: psycopg.Connection) -> int:
    """How many leaves the stored tree has."""
    return one(conn, "SELECT coalesce(max(idx) + 1, 0) FROM public.journal_merkle WHERE level = 0")[0]


def head_size(conn: psycopg.Connection) -> int:
    return one(conn, "SELECT seq FROM public.journal_head")[0]


def extend(conn: psycopg.Connection, *, batch: int = 10000) -> int:
    """Add the rows up to the journal's head to the tree, in the caller's transaction; the new size.

    One extender at a time (a transaction advisory lock): the nodes of a
    size are computed once and by one writer.
    """
    conn.execute(_LOCK)
    size, target = stored_size(conn), head_size(conn)
    node = _reader(conn)
    while size < target:
        rows = conn.execute("SELECT seq, hash FROM public.journal WHERE seq > %s AND seq <= %s ORDER BY seq LIMIT %s",
                            (size, target, batch)).fetchall()
        if not rows or rows[0][0] != size + 1 or rows[-1][0] != size + len(rows):
            raise merkle.ProofError(f"the journal has no gapless rows after seq {size}: run gatehouse journal verify")
        nodes = merkle.new_nodes(size, [bytes(h) for _, h in rows], node)
        with conn.cursor().copy("COPY public.journal_merkle (level, idx, hash) FROM STDIN") as copy:
            for level, index, h in nodes:
                copy.write_row((level, index, h))
        size += len(rows)
    return size


def _reader(conn: psycopg.Connection) -> merkle.Node:
    cache: dict[tuple[int, int], bytes] = {}

    def node(level: int, index: int) -> bytes:
        key = (level, index)
        if key not in cache:
            row = conn.execute("SELECT hash FROM public.journal_merkle WHERE level = %s AND idx = %s", key).fetchone()
            if row is None:
                raise merkle.ProofError(f"the tree has no node {level}/{index}: extend it first")
            cache[key] = bytes(row[0])
        return cache[key]

    return node


@dataclasses.dataclass(frozen=True)
class Inclusion:
    """Row seq's hash is leaf seq - 1 of the tree of tree_size leaves whose head is root."""

    seq: int
    tree_size: int
    leaf: bytes  # the leaf input: the row's hash
    root: bytes
    path: list[bytes]


def root(conn: psycopg.Connection, size: int) -> bytes:
    return merkle.root(_reader(conn), size)


def inclusion(conn: psycopg.Connection, seq: int, size: int) -> Inclusion:
    """The inclusion proof of row seq in the stored tree of `size` leaves (ProofError when it has none)."""
    if not 0 < seq <= size:
        raise merkle.ProofError(f"row {seq} is not in a tree of size {size}")
    if size > stored_size(conn):
        raise merkle.ProofError(f"the tree has fewer than {size} leaves")
    node = _reader(conn)
    leaf = one(conn, "SELECT hash FROM public.journal WHERE seq = %s", (seq,))[0]
    return Inclusion(seq, size, bytes(leaf), merkle.root(node, size), merkle.inclusion_path(node, seq - 1, size))


def consistency(conn: psycopg.Connection, old: int, new: int) -> list[bytes]:
    """The consistency proof from the stored tree of `old` leaves to the one of `new` leaves."""
    if new > stored_size(conn):
        raise merkle.ProofError(f"the tree has fewer than {new} leaves")
    return merkle.consistency_path(_reader(conn), old, new)
