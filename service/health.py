"""Liveness, readiness and the Prometheus metrics."""

import ipaddress
import logging

import psycopg
from flask import Blueprint, Response, jsonify, request

from service import config, journal, metrics, web
from service.auth.principal import Forbidden
from service.db import first_line, migrate
from service.errors import DatabaseUnavailable
from service.outbox import store as outbox

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database answers, its schema is current and the journal can be appended to."""
    services = web.services()
    try:
        with services.pool.connection() as conn:
            state = migrate.status(conn)
            if not state.current:
                raise DatabaseUnavailable(f"{len(state.pending)} migration(s) pending")
            journal.check_tail(conn)
    except psycopg.Error as e:  # includes the pool's PoolTimeout
        raise DatabaseUnavailable(f"database not reachable: {first_line(e)}") from None
    return jsonify(status="ready", schema=state.applied[-1] if state.applied else 0)


@bp.get("/metrics")
def metrics_page():
    """Prometheus text format: every worker process's metrics merged, and the outbox read now; allow-listed."""
    from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    services = web.services()
    client = ipaddress.ip_address(request.remote_addr or "0.0.0.0")
    if not any(client in ipaddress.ip_network(n) for n in services.settings.metrics_allow):
        raise Forbidden("metrics are read from the addresses in GATEHOUSE_METRICS_ALLOW only")
    metrics.init()
    registry = CollectorRegistry()
    path = config.metrics_dir()
    if path:  # under gunicorn: the files of every worker, alive or gone (counters never go back)
        MultiProcessCollector(registry, path=path)
    else:
        registry.register(REGISTRY)  # a registry collects like a collector
    registry.register(_Outbox(services))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


class _Outbox:
    """The outbox's backlog and dead letters per target: one indexed count at scrape time, the same in every
    replica."""

    def __init__(self, services):
        self.services = services

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        up = GaugeMetricFamily("gatehouse_database_up", "1 if this scrape could read the database, else 0")
        backlog = GaugeMetricFamily("gatehouse_outbox_backlog", "Outbox rows not yet confirmed (intent or sent)",
                                    labels=["target"])
        dead = GaugeMetricFamily("gatehouse_outbox_dead", "Outbox rows given up on (dead letters)", labels=["target"])
        try:
            with self.services.pool.connection(timeout=self.services.settings.db_timeout) as conn:
                counts = outbox.state_counts(conn)
        except psycopg.Error as e:
            log.warning("metrics: the outbox could not be read: %s", first_line(e))
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for target in sorted({t for t, _, _ in counts}):
            backlog.add_metric([target], sum(n for t, state, n in counts if t == target and state != "dead"))
            dead.add_metric([target], sum(n for t, state, n in counts if t == target and state == "dead"))
        yield from (up, backlog, dead)
