"""Prometheus metrics of the cloud service, served at /metrics in the text format.

Each app gets its own `CollectorRegistry`, so several services in one process (tests,
`tierwise up`) do not mix their counts. HTTP requests are labelled by route template
(`/v1/sites/{site}/telemetry`), never by raw path, so a scan cannot blow up the label set.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.types import ASGIApp, Message, Receive, Scope, Send

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class CloudMetrics:
    """The service's counters and histograms, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.http_requests = Counter(
            "tierwise_cloud_http_requests",
            "HTTP requests answered, by method, route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "tierwise_cloud_http_request_seconds",
            "time to answer an HTTP request, by route template",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.telemetry_events = Counter(
            "tierwise_cloud_telemetry_events",
            "telemetry events received, by site and result (accepted or duplicate)",
            ["site", "result"],
            registry=r,
        )
        self.drift = Gauge(
            "tierwise_cloud_drift",
            "1 while a site's stream of a feature has drifted from its package's reference",
            ["site", "feature"],
            registry=r,
        )
        self.drift_changes = Counter(
            "tierwise_cloud_drift_changes",
            "drift verdicts that changed, by direction (detected or cleared)",
            ["change"],
            registry=r,
        )
        self.inference_rows = Counter(
            "tierwise_cloud_inference_rows",
            "input rows answered by cloud inference, by feature",
            ["feature"],
            registry=r,
        )
        self.inference_seconds = Histogram(
            "tierwise_cloud_inference_seconds",
            "model time per cloud inference call, by feature",
            ["feature"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.package_uploads = Counter(
            "tierwise_cloud_package_uploads",
            "package uploads, by result (accepted, refused, conflict)",
            ["result"],
            registry=r,
        )
        self.rollout_transitions = Counter(
            "tierwise_cloud_rollout_transitions",
            "rollout state changes, by the state entered",
            ["state"],
            registry=r,
        )
        self.status_reports = Counter(
            "tierwise_cloud_status_reports",
            "site status reports received, by site",
            ["site"],
            registry=r,
        )
        self.site_last_seen = Gauge(
            "tierwise_cloud_site_last_seen_seconds",
            "Unix time of the last status report from each site",
            ["site"],
            registry=r,
        )

        self.deployment_polls_held = Gauge(
            "tierwise_cloud_deployment_polls_held",
            "deployment long-polls this replica holds open now",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetrics:
    """ASGI middleware counting every HTTP answer, including 413s sent before routing."""

    def __init__(self, app: ASGIApp, metrics: CloudMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app dies before answering

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.http_requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.http_seconds.labels(template).observe(time.perf_counter() - started)
