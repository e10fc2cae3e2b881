"""Inclusion and consistency proofs as the API and the CLI give them (JSON-ready), from the stored tree.

The tree is extended to the head first (in the caller's transaction), and a
proof names the stored checkpoint of its tree size when there is one, so the
receiver can check the root against a signature rather than take our word.
"""

import base64

import psycopg

from service.errors import BadRequest, NotFound
from service.journal import merkle, tree


def _checkpoint(conn: psycopg.Connection, size: int) -> str | None:
    row = conn.execute("SELECT note FROM public.journal_checkpoints WHERE tree_size = %s ORDER BY id DESC LIMIT 1",
                       (size,)).fetchone()
    return None if row is None else row[0]


def _root(root: bytes) -> dict:
    return {"hex": root.hex(), "base64": base64.b64encode(root).decode()}


def inclusion(conn: psycopg.Connection, seq: int, size: int | None = None) -> dict:
    """Row seq's inclusion proof in the tree of `size` leaves (default: the newest checkpoint with it, or the head)."""
    head = tree.extend(conn)
    if not 0 < seq <= head:
        raise NotFound(f"no journal row {seq} (the head is at {head})")
    if size is None:
        row = conn.execute("SELECT max(tree_size) FROM public.journal_checkpoints").fetchone()
        newest = row[0] if row else None
        size = newest if newest is not None and newest >= seq else head
    if not seq <= size <= head:
        raise BadRequest(f"tree size {size} must be between row {seq} and the head, {head}")
    try:
        proof = tree.inclusion(conn, seq, size)
    except merkle.ProofError as e:
        raise BadRequest(str(e)) from None
    return {"seq": seq, "leaf_index": seq - 1, "tree_size": size, "leaf_input": proof.leaf.hex(),
            "root": _root(proof.root), "inclusion_path": [p.hex() for p in proof.path],
            "checkpoint": _checkpoint(conn, size)}


def consistency(conn: psycopg.Connection, old: int, new: int) -> dict:
    """The consistency proof between tree sizes old <= new (both at most the head)."""
    head = tree.extend(conn)
    if not 0 < old <= new <= head:
        raise BadRequest(f"tree sizes must satisfy 1 <= old ({old}) <= new ({new}) <= the head ({head})")
    path = tree.consistency(conn, old, new)
    return {"old_size": old, "new_size": new, "old_root": _root(tree.root(conn, old)),
            "new_root": _root(tree.root(conn, new)), "consistency_path": [p.hex() for p in path],
            "old_checkpoint": _checkpoint(conn, old), "new_checkpoint": _checkpoint(conn, new)}
