"""Signed checkpoints: the worker's journal_checkpoint job, the stored checkpoints, the published copy.

A checkpoint commits to the whole journal up to its tree size; stored in
journal_checkpoints (append-only) and written to GATEHOUSE_JOURNAL_CHECKPOINT_FILE,
and POSTed to GATEHOUSE_JOURNAL_CHECKPOINT_WEBHOOK_URL (signed), so that a copy survives a superuser who deletes
the stored ones.
"""

import dataclasses
import os
from datetime import datetime
from pathlib import Path

import psycopg

from connectors import webhook
from connectors.outbound import DeliveryError
from service import db
from service.db.query import one
from service.errors import ConfigError, DatabaseUnavailable, GatehouseError, Skipped
from service.journal import note, signers, tree


class Upstream(GatehouseError):
    """A copy could not be published outside."""

    status = 502
    code = "upstream"


@dataclasses.dataclass(frozen=True)
class Stored:
    id: int
    tree_size: int
    root: bytes
    note: str
    signed_at: datetime


def make(conn: psycopg.Connection, signer: signers.Signer) -> Stored:
    """Extend the tree to the head and sign and store its checkpoint, in the caller's transaction."""
    size = tree.extend(conn)
    root = tree.root(conn, size)
    text = signers.sign_checkpoint(signer, size, root)
    checkpoint_id, signed_at = one(conn, """
        INSERT INTO public.journal_checkpoints (origin, tree_size, root_hash, key_name, key_id, note, signer)
        VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id, signed_at""",
        (signer.name, size, root, signer.name, note.key_id(signer.name, signer.public_key), text, signer.kind))
    return Stored(checkpoint_id, size, root, text, signed_at)


def stored(conn: psycopg.Connection) -> list[Stored]:
    rows = conn.execute("SELECT id, tree_size, root_hash, note, signed_at FROM public.journal_checkpoints "
                        "ORDER BY id").fetchall()
    return [Stored(i, size, bytes(root), text, at) for i, size, root, text, at in rows]


def publish(path: Path, text: str) -> None:
    """Replace the file at `path` with the checkpoint, atomically (a reader sees the old or the new one)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def checkpoint_job(services) -> dict:
    """The worker's journal_checkpoint job: sign the tree at the head, store it, publish it."""
    settings = services.settings
    signer = signers.configured(settings)
    if signer is None:
        raise Skipped("no checkpoint key is configured (GATEHOUSE_JOURNAL_KEY_FILE or GATEHOUSE_JOURNAL_PKCS11_MODULE)")
    try:
        with db.connect(services.database.app_url, timeout=settings.db_timeout) as conn, conn.transaction():
            made = make(conn, signer)
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"journal checkpoint: {db.first_line(e)}") from None
    if settings.journal_checkpoint_file:
        publish(settings.journal_checkpoint_file, made.note)
    counts = {"checkpoint": made.id, "tree_size": made.tree_size, "root": made.root.hex()}
    if settings.journal_checkpoint_webhook_url:
        counts["webhook_status"] = publish_webhook(settings, signer.name, made)
    return counts


def publish_webhook(settings, origin: str, made: Stored) -> int:
    """POST the checkpoint to GATEHOUSE_JOURNAL_CHECKPOINT_WEBHOOK_URL, signed as the outbox's webhooks are; the
    HTTP status. A failure fails the run (the checkpoint stays stored; the next run publishes the newer one)."""
    if settings.journal_checkpoint_webhook_secret_file is None:
        raise ConfigError("GATEHOUSE_JOURNAL_CHECKPOINT_WEBHOOK_SECRET_FILE",
                          "required with GATEHOUSE_JOURNAL_CHECKPOINT_WEBHOOK_URL (the POSTs are signed)")
    secret = Path(settings.journal_checkpoint_webhook_secret_file).read_bytes().strip()
    try:
        return webhook.post(settings.journal_checkpoint_webhook_url, secret, {
            "id": f"checkpoint-{made.id}", "type": "journal.checkpoint", "origin": origin,
            "tree_size": made.tree_size, "root": made.root.hex(), "signed_at": made.signed_at.isoformat(),
            "note": made.note}, timeout=settings.db_timeout)
    except DeliveryError as e:
        raise Upstream(f"checkpoint {made.id} (tree size {made.tree_size}) is stored, but publishing it failed: "
                       f"{e}") from None
