"""Prometheus metrics of the dashboard, in a registry of its own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "raksha_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "raksha_http_request_seconds",
            "HTTP request duration by route template.",
            ["route"],
            registry=self.registry,
        )
        self.logins = Counter(
            "raksha_logins", "Login attempts by outcome.", ["outcome"], registry=self.registry
        )
        self.actions = Counter(
            "raksha_incident_actions",
            "Officer actions by action.",
            ["action"],
            registry=self.registry,
        )
        self.evidence = Counter(
            "raksha_evidence_reads",
            "Evidence served by view (blurred/original) and outcome.",
            ["view", "outcome"],
            registry=self.registry,
        )
        self.subscribers = Gauge(
            "raksha_event_subscribers", "Open /api/events streams.", registry=self.registry
        )
        self.events = Counter(
            "raksha_events_published",
            "Incident events found by the hub.",
            ["type"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
