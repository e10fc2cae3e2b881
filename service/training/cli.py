"""Command line for training completions: `gatehouse training import FILE.csv`."""

import csv
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
import psycopg

from service import db
from service.cli_context import Context, operator_actor, pass_ctx
from service.errors import BadRequest, DatabaseUnavailable, GatehouseError
from service.training import plan as planning
from service.training import sweep as training

COLUMNS = ("person", "course", "completed_at", "source_id")
CHUNK = 500  # lines per transaction: a failure later in the file keeps what was imported before


@click.group("training")
def training_group():
    """Training completions."""


@training_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", help='Where the completions come from, unless a line has a source column '
                                '(default "csv:<file name>"); with source_id it spots re-sent lines.')
@pass_ctx
def training_import(ctx: Context, file: Path, source: str | None):
    """Import completions (columns person,course,completed_at,source_id[,source]); exit 1 if any line was bad."""
    from service.bootstrap import load_policy

    lines = read_csv(file, source or f"csv:{file.name}"[:64])
    policy = load_policy(ctx.settings.policy_file)
    good = [(n, raw) for n, raw in lines if isinstance(raw, dict)]
    results = {n: planning.Result(n, planning.INVALID, raw) for n, raw in lines if not isinstance(raw, dict)}
    try:
        with ctx.connection(autocommit=True) as conn:
            for chunk, done in _chunks(good):
                found = training.record_completions(conn, [raw for _, raw in chunk], policy=policy,
                                                    now=datetime.now(UTC), actor=operator_actor())
                results.update({chunk[r.index][0]: r for r in found})
                done(len(chunk))
    except psycopg.OperationalError as e:
        raise DatabaseUnavailable(f"the import stopped: {db.first_line(e)}") from None
    _report(results)


def read_csv(file: Path, default_source: str) -> list[tuple[int, dict | str]]:
    """(line number, completion) for each data line, or (line number, why it cannot be read)."""
    lines: list[tuple[int, dict | str]] = []
    try:
        with file.open(newline="", encoding="utf-8-sig") as f:  # -sig: a spreadsheet's byte-order mark
            reader = csv.DictReader(f)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
            if missing:
                raise BadRequest(f"{file}: the header line lacks {', '.join(missing)} "
                                 f"(expected {','.join(COLUMNS)}[,source])")
            for row in reader:
                lines.append((reader.line_num, _completion(row, len(reader.fieldnames), default_source)))
    except UnicodeDecodeError as e:
        raise BadRequest(f"{file}: not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise BadRequest(f"{file}, line {reader.line_num}: {e}") from None
    except OSError as e:
        raise BadRequest(f"cannot read {file}: {e.strerror}") from None
    return lines


def _completion(row: dict, width: int, default_source: str) -> dict | str:
    if None in row or None in row.values():
        given = width + len(row.get(None, ())) - sum(v is None for k, v in row.items() if k is not None)
        return f"expected {width} fields, got {given}"
    return {"person": row["person"], "course": row["course"], "completed_at": row["completed_at"],
            "source_id": row["source_id"], "source": row.get("source") or default_source}


def _chunks(good: list):
    """The lines in chunks, with a progress bar on a terminal and a plain line per chunk otherwise."""
    total = len(good)
    if sys.stdout.isatty():
        with click.progressbar(length=total, label="importing", show_pos=True) as bar:
            for start in range(0, total, CHUNK):
                yield good[start:start + CHUNK], bar.update
        return
    imported = 0
    for start in range(0, total, CHUNK):
        def done(n: int) -> None:
            nonlocal imported
            imported += n
            click.echo(f"processed {imported}/{total} lines")
        yield good[start:start + CHUNK], done


def _report(results: dict) -> None:
    counts = dict.fromkeys(planning.STATUSES, 0)
    for n in sorted(results):
        r = results[n]
        counts[r.status] += 1
        if r.status in planning.NOT_IMPORTED:
            click.echo(f"line {n}: {r.status}: {r.detail}")
    click.echo(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    bad = sum(counts[s] for s in planning.NOT_IMPORTED)
    if bad:
        raise GatehouseError(f"{bad} of {len(results)} lines were not imported (see above)")
