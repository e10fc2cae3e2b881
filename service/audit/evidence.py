"""Evidence bundles: what an auditor takes away for a period, in one zip that proves itself with no database.

`export` writes, for [since, until): the journal's rows (JSON Lines, every field as the hash covers it), the link
to the row before them, the whole chain's verification at export time, the access review items decided or
missed in the period with what each reviewer saw, training compliance, the text of each policy version the rows
name, a control map (ISO 27001:2022, SOC 2) and a manifest with the SHA-256 of every file. `verify` checks a
bundle offline: the manifest against the files, every row's hash and the chain through the slice, the policy
texts against their versions. It needs nothing but this module, the journal's rule and the zip (the format is
in the README, so an auditor can write their own).

A bundle alone proves it is self-consistent; that the rows are the ones the journal held is proved by an anchor
kept outside (`--expect` when verifying, or the signed checkpoints once they are in the bundle).
"""

import csv
import dataclasses
import hashlib
import io
import json
import zipfile
from datetime import datetime

import psycopg

from policies import Policy
from service import journal
from service.audit import store
from service.audit.store import Search
from service.db.query import one
from service.journal import checkpoints, merkle, note, offline, proofs, signers
from service.training import outlook

FORMAT = "gatehouse-evidence-v1"
CHECKPOINT, PREVIOUS, KEY, PROOFS = "checkpoint.txt", "checkpoint_previous.txt", "checkpoint_key.txt", "proofs.json"
JOURNAL = "journal.jsonl"
MANIFEST = "manifest.json"

CONTROLS = {
    "ISO 27001:2022 A.5.15 Access control": ["journal.jsonl (kinds check, grant, revoke)", "policies/"],
    "ISO 27001:2022 A.5.16 Identity management": ["journal.jsonl (kind sync: SCIM and LDAP changes)"],
    "ISO 27001:2022 A.5.18 Access rights": ["reviews.csv", "journal.jsonl (kinds review, revoke, suspend)"],
    "ISO 27001:2022 A.6.3 Information security awareness, education and training": [
        "training.json", "journal.jsonl (kinds suspend, restore with training reasons)"],
    "ISO 27001:2022 A.8.2 Privileged access rights": ["journal.jsonl (kind admin: each admin action and its key)"],
    "ISO 27001:2022 A.8.5 Secure authentication": ["journal.jsonl (kind check: every gateway decision)"],
    "ISO 27001:2022 A.8.15 Logging": ["journal.jsonl", "chain.json", "verification.txt", "manifest.json"],
    "SOC 2 CC6.1 Logical access security": ["journal.jsonl (kind check)", "policies/"],
    "SOC 2 CC6.2 Registration and authorization of users": ["journal.jsonl (kinds sync, grant)", "reviews.csv"],
    "SOC 2 CC6.3 Role-based access, modification and removal": [
        "reviews.csv", "journal.jsonl (kinds revoke, suspend, outbound)"],
    "SOC 2 CC7.2 Monitoring of system components": ["journal.jsonl", "verification.txt"],
}


@dataclasses.dataclass(frozen=True)
class Exported:
    path: str
    rows: int
    first_seq: int | None
    last_seq: int | None
    policies: tuple[str, ...]


def export(conn: psycopg.Connection, path: str, *, since: datetime, until: datetime, policy: Policy, now: datetime,
           generated_by: str, signer: signers.Signer | None = None) -> Exported:
    """Write the bundle for [since, until) to `path`, reading in one REPEATABLE READ snapshot. With a signer, a
    checkpoint is signed first and the bundle carries it, its key, the previous checkpoint and the proofs that tie
    the period's first and last rows to the signed root."""
    files: dict[str, dict] = {}
    signed = _sign(conn, signer, since, until) if signer else None
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        chain = _write_journal(zf, conn, Search(since=since, until=until), files)
        verified = journal.verify(conn)
        _put(zf, files, "verification.txt", (
            f"gatehouse journal verify at {now.isoformat()}: "
            + (f"OK {verified.count} {verified.head}" if verified.ok else f"BAD {verified.bad_seq} {verified.problem}")
            + "\n").encode())
        _put(zf, files, "chain.json", _json(chain))
        _put(zf, files, "reviews.csv", _reviews(conn, since, until))
        _put(zf, files, "training.json", _json(_training(conn, policy, now)))
        versions = sorted(set(chain.pop("policy_versions")) | {policy.version})
        texts = dict(conn.execute("SELECT version, text FROM policy_texts WHERE version = ANY(%s)", (versions,)))
        for version in versions:
            if version in texts:
                _put(zf, files, f"policies/{version}.toml", texts[version].encode())
        _put(zf, files, "controls.json", _json(CONTROLS))
        if signed:
            for name, data in signed.items():
                _put(zf, files, name, data)
        _put(zf, files, MANIFEST, _json({
            "format": FORMAT, "period": {"since": since.isoformat(), "until": until.isoformat()},
            "generated_at": now.isoformat(), "generated_by": generated_by, "journal": chain,
            "policies_without_text": [v for v in versions if v not in texts], "signed": bool(signed),
            "files": files}))
    return Exported(path, chain["count"], chain["first_seq"], chain["last_seq"], tuple(versions))


def _sign(conn: psycopg.Connection, signer: signers.Signer, since: datetime, until: datetime) -> dict[str, bytes]:
    """A checkpoint signed now (the tree extended to the head), the one before it, and the proofs: inclusion of the
    period's first and last rows in the new tree, consistency of the previous tree with it."""
    with conn.transaction():
        before = checkpoints.stored(conn)
        made = checkpoints.make(conn, signer)
        first, last = one(conn, "SELECT min(seq), max(seq) FROM public.journal WHERE ts >= %s AND ts < %s",
                          (since, until))
        found: dict = {"tree_size": made.tree_size}
        for end, seq in (("first", first), ("last", last)):
            if seq is not None:
                found[end] = {"seq": seq, "path": proofs.inclusion(conn, seq, made.tree_size)["inclusion_path"]}
        out = {CHECKPOINT: made.note.encode(), KEY: (note.verifier_key(signer.name, signer.public_key) + "\n").encode()}
        previous = next((c for c in reversed(before) if c.tree_size <= made.tree_size), None)
        if previous is not None:
            found["previous"] = {"tree_size": previous.tree_size, "path": proofs.consistency(
                conn, previous.tree_size, made.tree_size)["consistency_path"]}
            out[PREVIOUS] = previous.note.encode()
        out[PROOFS] = _json(found)
    return out


def _write_journal(zf: zipfile.ZipFile, conn: psycopg.Connection, search: Search, files: dict) -> dict:
    digest, size, count = hashlib.sha256(), 0, 0
    first = last = None
    versions: set[str | None] = set()
    with zf.open(JOURNAL, "w", force_zip64=True) as out:
        for rows in store.stream_lines(conn, search):
            data = ("\n".join([r[2] for r in rows]) + "\n").encode()
            out.write(data)
            digest.update(data)
            size, count = size + len(data), count + len(rows)
            first = first or json.loads(rows[0][2])
            last = rows[-1]
            versions.update(r[1] for r in rows)
    versions.discard(None)
    files[JOURNAL] = {"sha256": digest.hexdigest(), "bytes": size}
    end = json.loads(last[2]) if last else None
    return {"count": count, "first_seq": first["seq"] if first else None, "last_seq": end["seq"] if end else None,
            "prev_hash": first["prev_hash"] if first else None, "last_hash": end["hash"] if end else None,
            "policy_versions": sorted(v for v in versions if v)}


def file_sha256(path: str) -> str:
    """The SHA-256 of a file (a bundle, as the journal row of its export records it), read a MiB at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _put(zf: zipfile.ZipFile, files: dict, name: str, data: bytes) -> None:
    zf.writestr(name, data)
    files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def _json(value) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n").encode()


_REVIEW_ITEMS = """
SELECT c.key, c.started_at, c.due_at, p.user_name, r.key, rv.user_name, i.route, i.decision, i.decided_by,
       i.decided_at, i.comment, i.missed_at, i.evidence::text
FROM review_items i
JOIN review_campaigns c ON c.id = i.campaign_id
JOIN people p ON p.id = i.person_id
JOIN resources r ON r.id = i.resource_id
LEFT JOIN people rv ON rv.id = i.reviewer_id
WHERE (i.decided_at >= %(since)s AND i.decided_at < %(until)s) OR (i.missed_at >= %(since)s AND i.missed_at < %(until)s)
   OR (c.started_at < %(until)s AND c.due_at >= %(since)s)
ORDER BY c.started_at, c.key, p.user_name, r.key
"""


def _reviews(conn: psycopg.Connection, since: datetime, until: datetime) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(("campaign", "started_at", "due_at", "person", "resource", "reviewer", "route", "decision",
                     "decided_by", "decided_at", "comment", "missed_at", "evidence"))
    for row in conn.execute(_REVIEW_ITEMS, {"since": since, "until": until}):
        writer.writerow(["" if v is None else v.isoformat() if isinstance(v, datetime) else str(v) for v in row])
    return out.getvalue().encode()


def _training(conn: psycopg.Connection, policy: Policy, now: datetime) -> dict:
    return {"at": now.isoformat(), "policy_version": policy.version, "courses": [
        {"course": c.course, "name": c.course_name, "people": c.people, "current": c.current, **c.counts,
         "behind": [{"person_id": pid, "name": name, "state": state, "since": since.isoformat()}
                    for pid, name, state, since in c.behind]}
        for c in outlook.compliance(conn, policy, now)]}


# --- verification, offline ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Checked:
    ok: bool
    message: str  # "OK ..." or the first problem and where


def verify(path: str, *, expect: tuple[tuple[int, str], ...] = (), key: str | None = None) -> Checked:
    """Check a bundle with nothing but the file: manifest, every file's digest, the journal slice's chain and its
    ends, the policy texts; then each (seq, hash) anchor in `expect` kept outside the bundle."""
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        return Checked(False, f"not a readable zip: {e}")
    with zf:
        try:
            manifest = json.loads(zf.read(MANIFEST))
        except (KeyError, ValueError) as e:
            return Checked(False, f"{MANIFEST}: missing or not JSON ({e})")
        if manifest.get("format") != FORMAT:
            return Checked(False, f"{MANIFEST}: format is {manifest.get('format')!r}, not {FORMAT}")
        listed = manifest.get("files", {})
        for name in zf.namelist():
            if name != MANIFEST and name not in listed:
                return Checked(False, f"{name}: in the zip but not in the manifest")
        for name, want in listed.items():
            problem = _digest_problem(zf, name, want)
            if problem:
                return Checked(False, problem)
        chain = manifest["journal"]
        problem, seen = _check_journal(zf, chain, expect)
        if problem:
            return Checked(False, problem)
        signed = ""
        if manifest.get("signed"):
            problem, signed = _check_signed(zf, chain, seen, key)
            if problem:
                return Checked(False, problem)
        elif key:
            return Checked(False, f"{MANIFEST}: the bundle carries no signed checkpoint to check against --key")
        for name in listed:
            if name.startswith("policies/"):
                version = name.removeprefix("policies/").removesuffix(".toml")
                if hashlib.sha256(zf.read(name)).hexdigest() != version:
                    return Checked(False, f"{name}: its text is not the policy version it is named for")
    if missing := [seq for seq, _ in expect if seq not in seen["anchors"]]:
        return Checked(False, f"anchor seq {missing[0]} is not in this bundle's rows")
    return Checked(True, f"OK {chain['count']} rows, seq {chain['first_seq']} to {chain['last_seq']}, "
                         f"last hash {chain['last_hash']}{signed}")


def _check_signed(zf: zipfile.ZipFile, chain: dict, seen: dict, pinned: str | None) -> tuple[str | None, str]:
    """The checkpoint's signature by the bundle's key (or the one the auditor pins), the period's first and last
    rows in its tree, and the previous checkpoint's tree inside it."""
    try:
        vkey = zf.read(KEY).decode().strip()
        name, public = note.parse_verifier_key(pinned or vkey)
        if pinned and pinned.strip() != vkey:
            return f"{KEY}: the bundle was signed by {vkey.split('+')[0]}+{vkey.split('+')[1]}, not the key given", ""
        cp = note.open_checkpoint(zf.read(CHECKPOINT).decode(), name, public)
        found = json.loads(zf.read(PROOFS))
    except (KeyError, ValueError, note.NoteError) as e:
        return f"{CHECKPOINT}: {e}", ""
    if cp.size != found.get("tree_size"):
        return f"{PROOFS}: for a tree of {found.get('tree_size')} rows, but the checkpoint signs {cp.size}", ""
    for end, digest in (("first", seen.get("first")), ("last", chain["last_hash"])):
        proof = found.get(end)
        if chain["count"] and (proof is None or digest is None or not merkle.verify_inclusion(
                proof["seq"] - 1, cp.size, merkle.leaf_hash(bytes.fromhex(digest)),
                [bytes.fromhex(p) for p in proof["path"]], cp.root)):
            return f"{PROOFS}: the {end} row is not in the signed tree of {cp.size} rows (checkpoint.txt)", ""
        if proof and proof["seq"] != chain[f"{end}_seq"]:
            return f"{PROOFS}: the {end} proof is of seq {proof['seq']}, not {chain[f'{end}_seq']}", ""
    if "previous" in found:
        try:
            old = note.open_checkpoint(zf.read(PREVIOUS).decode(), name, public)
        except (KeyError, note.NoteError) as e:
            return f"{PREVIOUS}: {e}", ""
        path = [bytes.fromhex(p) for p in found["previous"]["path"]]
        if old.size != found["previous"]["tree_size"] or not merkle.verify_consistency(
                old.size, cp.size, path, old.root, cp.root):
            return f"{PROOFS}: the previous checkpoint's tree ({old.size} rows) is not a prefix of the new one", ""
    return None, f"; signed checkpoint of {cp.size} rows by {name}+{note.key_id(name, public).hex()} verified"


def _digest_problem(zf: zipfile.ZipFile, name: str, want: dict) -> str | None:
    try:
        info = zf.getinfo(name)
    except KeyError:
        return f"{name}: listed in the manifest but missing"
    digest = hashlib.sha256()
    with zf.open(info) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != want.get("sha256") or info.file_size != want.get("bytes"):
        return f"{name}: its SHA-256 is not the one in the manifest (the file was changed)"
    return None


def _check_journal(zf: zipfile.ZipFile, chain: dict, expect: tuple[tuple[int, str], ...]) -> tuple[str | None, dict]:
    """The slice's rows, checked in parallel blocks (offline.check_blocks): each row's hash, the chain from the row
    before the slice, the anchors kept outside; the first problem named with its line."""
    seen: dict = {"anchors": set(), "first": None}
    if not chain["count"]:
        return None, seen
    with zf.open(JOURNAL) as raw:
        checked = offline.check_blocks(offline.blocks_of(raw), after_seq=chain["first_seq"] - 1,
                                       after_hash=chain["prev_hash"], anchors=dict(expect), blank_ok=False)
    result = checked.result
    if checked.kind in ("row", "anchor"):
        return f"{JOURNAL}: {checked.text}", seen
    if not result.ok:
        return f"{JOURNAL} line {checked.line}: seq {result.bad_seq}: {result.problem}", seen
    if result.count != chain["count"] or result.head != chain["last_hash"]:
        return (f"{JOURNAL}: {result.count} rows ending in {result.head}, but the manifest says {chain['count']} "
                f"ending in {chain['last_hash']} (rows removed at the end?)"), seen
    seen["first"] = checked.first_hash
    seen["anchors"] = {seq for seq, _ in expect if chain["first_seq"] <= seq < chain["first_seq"] + result.count}
    return None, seen
