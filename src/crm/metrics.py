"""Prometheus metrics at /metrics (CRM_METRICS=true), with the `prometheus-client` library:
requests by method, route template and status with their latency, and the database pool.
Never a tenant's data: no org, user, record id or raw path is ever a label.

With `crm serve --workers N` every worker is a process of its own: each writes its figures
to files in PROMETHEUS_MULTIPROC_DIR (a directory the supervisor makes, see server.py), and
a scrape, whichever worker answers it, reads them all (the library's multiprocess mode)."""

import glob
import os
from collections.abc import Iterable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncEngine

MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
# A label takes a bounded set of values: any other method a client makes up is "other", and
# a request that matched no route (or was refused before routing) has no template.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNROUTED = "none"
# The API answers most requests in milliseconds; uploads take seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# The pools' gauges, by the SQLAlchemy pool method that gives each figure (a QueuePool, as
# both databases have, has them all; a pool without one has no such gauge), summed over the
# instance's pools (PostgreSQL has a second one for lists).
POOL_GAUGES = {
    "size": ("crm_db_pool_size", "Connections the database pools keep once made (their size)."),
    "checkedout": ("crm_db_pool_checked_out", "Database connections in use by requests."),
    "checkedin": ("crm_db_pool_idle", "Database connections open and idle in the pools."),
    "overflow": ("crm_db_pool_overflow", "Database connections open beyond the pools' size."),
}

# A `_created` series per counter only doubles the scrape.
disable_created_metrics()


def pool_figures(engines: list[AsyncEngine]) -> dict[str, int]:
    """The figures the engines' pools have, by the pool method giving each, summed."""
    figures: dict[str, int] = {}
    for engine in engines:
        pool: Any = engine.sync_engine.pool  # read each time: dispose() replaces the pool
        for name in POOL_GAUGES:
            if hasattr(pool, name):
                value = int(getattr(pool, name)())
                if name == "overflow":  # SQLAlchemy counts up from -size while it fills
                    value = max(0, value)
                figures[name] = figures.get(name, 0) + value
    return figures


class WorkersCollector(MultiProcessCollector):
    """The library's collector, leaving out a file still at 0 bytes: a worker that is
    starting creates its file before it sizes it, and reading one then fails the whole
    scrape (prometheus/client_python#1199)."""

    def collect(self) -> Iterable[Any]:
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) > 0:
                    files.append(path)
            except FileNotFoundError:
                pass  # a dead worker's live gauges, removed meanwhile
        return self.merge(files, accumulate=True)


class Metrics:
    """The figures of one app instance, in a registry of its own."""

    def __init__(self, engines: list[AsyncEngine]) -> None:
        self.engines = engines
        self.directory = os.environ.get(MULTIPROC_DIR)
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter(
            "crm_http_requests",
            "Requests answered, by method, route template and status.",
            labels,
            registry=self.registry,
        )
        self.duration = Histogram(
            "crm_http_request_duration_seconds",
            "Time from a request's arrival to its answer, by method, route template and status.",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        # Summed over the live workers: the server's pools together.
        self.pool = {
            name: Gauge(*POOL_GAUGES[name], registry=self.registry, multiprocess_mode="livesum")
            for name in pool_figures(engines)
        }
        self.pool_seen: dict[str, int] = {}
        # The label children by label values: the library's .labels() checks and locks on
        # every call.
        self.children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.update_pool()

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """One answered request; `route` is its template, never the raw path."""
        key = (method if method in METHODS else "other", route or UNROUTED, status)
        children = self.children.get(key)
        if children is None:
            labels = (key[0], key[1], str(status))
            children = self.requests.labels(*labels), self.duration.labels(*labels)
            self.children[key] = children
        children[0].inc()
        children[1].observe(seconds)
        if self.directory:
            # Another worker may answer the next scrape: this one's pool as it stands after
            # the request (an idle worker's last figures stay true).
            self.update_pool()

    def update_pool(self) -> None:
        for name, value in pool_figures(self.engines).items():
            if self.pool_seen.get(name) != value:
                self.pool[name].set(value)
                self.pool_seen[name] = value

    def render(self) -> bytes:
        """The scrape: this process's figures, or with several workers all of theirs."""
        self.update_pool()
        if not self.directory:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        WorkersCollector(registry, self.directory)
        return generate_latest(registry)
