"""The gateway's Prometheus metrics, one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class Metrics:
    """Counters, histograms and gauges of one gateway process."""

    def __init__(self, implementation: str) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "gateway_requests",
            "Data-plane requests by route and status.",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request head to response, in the gateway.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_duration_seconds",
            "Time spent waiting for upstreams.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.in_flight = Gauge("gateway_in_flight_requests", "Requests being handled.", registry=r)
        self.db_pool_size = Gauge("gateway_db_pool_size", "Open Postgres connections.", registry=r)
        self.db_pool_in_use = Gauge(
            "gateway_db_pool_in_use", "Postgres connections lent out.", registry=r
        )
        self.db_pool_max = Gauge("gateway_db_pool_max", "Postgres pool capacity.", registry=r)
        self.loop_lag = Gauge(
            "gateway_event_loop_lag_seconds", "Last measured scheduling delay.", registry=r
        )
        self.log_queue = Gauge(
            "gateway_request_log_queue_depth", "Request-log records waiting.", registry=r
        )
        self.log_dropped = Counter(
            "gateway_request_log_dropped", "Request-log records dropped (buffer full).", registry=r
        )
        self.log_written = Counter(
            "gateway_request_log_written", "Request-log records written.", registry=r
        )
        self.config_version = Gauge(
            "gateway_config_version", "Configuration version in force.", registry=r
        )
        info = Gauge("gateway_info", "Implementation.", ["implementation"], registry=r)
        info.labels(implementation).set(1)

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)
