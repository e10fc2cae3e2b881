"""Prometheus metrics (prometheus-client): what the service counts and times, read at /metrics and by the worker.

Built on first use, never at import: prometheus-client chooses its multiprocess mode (one file per process
in PROMETHEUS_MULTIPROC_DIR, merged at scrape time) when it is first imported, and `gatehouse serve` sets
that directory before gunicorn forks. Every call here is cheap: about 10 to 30 microseconds in multiprocess
mode on a loaded 2-core machine (a lock and a write into a memory-mapped file).
"""

import contextlib
import threading
import time
import types
from collections.abc import Iterator

# Seconds; a check takes milliseconds, a journal batch's commit a fraction of one.
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH = (1, 2, 5, 10, 20, 50, 100, 200, 500)
_JOB = (0.01, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
CHECK_STEPS = ("token", "facts", "decide", "journal_wait", "respond")
SCIM_TYPES = frozenset({"Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes", ".search"})


_built: types.SimpleNamespace | None = None
_lock = threading.Lock()


def _m() -> types.SimpleNamespace:
    """The metrics, created by the first caller of this process (a metric registers once per registry)."""
    if _built is None:
        with _lock:
            if _built is None:
                _build()
    return _built  # type: ignore[return-value]


def _build() -> None:
    from prometheus_client import Counter, Gauge, Histogram

    global _built
    step_histogram = Histogram("gatehouse_check_step_seconds", "Access check latency per step", ["step"],
                               buckets=_FAST)
    _built = types.SimpleNamespace(
        checks=Counter("gatehouse_checks", "Access check decisions answered, by outcome and first reason code",
                       ["outcome", "reason"]),
        check_seconds=Histogram("gatehouse_check_seconds", "Access check latency, request parsed to answer built",
                                buckets=_FAST),
        steps=types.MappingProxyType({step: step_histogram.labels(step) for step in CHECK_STEPS}),
        journal_seconds=Histogram("gatehouse_journal_append_seconds",
                                  "Group commit: one batch of journal rows, insert to commit", buckets=_FAST),
        journal_batch=Histogram("gatehouse_journal_batch_rows", "Group commit: journal rows per committed batch",
                                buckets=_BATCH),
        scim=Counter("gatehouse_scim_requests", "SCIM requests answered, by method, resource type and status",
                     ["method", "resource_type", "status"]),
        sync_runs=Counter("gatehouse_sync_runs", "Directory sync runs recorded, by kind and outcome",
                          ["kind", "outcome"]),
        sync_changes=Counter("gatehouse_sync_changes", "Changes applied by directory sync runs, by change",
                             ["change"]),
        job_runs=Counter("gatehouse_job_runs", "Job runs, by job and outcome", ["job", "outcome"]),
        job_seconds=Histogram("gatehouse_job_seconds", "Job run durations", ["job", "outcome"], buckets=_JOB),
        job_success=Gauge("gatehouse_job_last_success_timestamp_seconds",
                          "When each job last finished with outcome ok (Unix time)", ["job"],
                          multiprocess_mode="max"),
    )


def init() -> None:
    """Create every metric now (in this process's registry), so that a scrape lists each family from the start."""
    _m()


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    """Time one step of an access check (one of CHECK_STEPS)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _m().steps[name].observe(time.perf_counter() - started)  # a child per step, made once: no labels() here


@contextlib.contextmanager
def check_timer() -> Iterator[None]:
    """Time a whole access check."""
    started = time.perf_counter()
    try:
        yield
    finally:
        _m().check_seconds.observe(time.perf_counter() - started)


def checked(decision) -> None:
    """One decision answered (committed to the journal, or denied as unavailable), by its first reason's code."""
    _m().checks.labels("allow" if decision.allow else "deny", decision.reasons[0].kind.value).inc()


def journal_batch(rows: int, seconds: float) -> None:
    """One group-commit batch committed."""
    m = _m()
    m.journal_seconds.observe(seconds)
    m.journal_batch.observe(rows)


def scim_request(method: str, path: str, status: int) -> None:
    """One SCIM answer; the resource type is the path's first segment under /scim/v2 (other: anything else)."""
    parts = path.split("/")  # ["", "scim", "v2", "Users", ...]
    kind = parts[3] if len(parts) > 3 and parts[3] in SCIM_TYPES else "other"
    _m().scim.labels(method, kind, str(status)).inc()


def sync_run(kind: str, outcome: str, changes: dict[str, int]) -> None:
    """A directory sync run recorded; changes counted only when applied."""
    m = _m()
    m.sync_runs.labels(kind, outcome).inc()
    for change, count in changes.items():
        if count:
            m.sync_changes.labels(change).inc(count)


def job_ran(job: str, outcome: str, seconds: float, finished: float) -> None:
    """A job run finished (finished: Unix time)."""
    m = _m()
    m.job_runs.labels(job, outcome).inc()
    m.job_seconds.labels(job, outcome).observe(seconds)
    if outcome == "ok":
        m.job_success.labels(job).set(finished)
