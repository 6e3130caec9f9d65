"""Shadow mode against the live side, per camera, for the statistics page and `raksha report
shadow`: the shadow's would-be events, how many the live side also raised, and of those how
many officers judged real (`raksha.store.shadow` defines the counts).

Scoped as field precision (`raksha.services.precision`): a supervisor sees their station's
cameras, the control room all; the figures are part of the precision report's audit entry
on the page, and an entry `report.shadow` of their own from the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from raksha.audit.log import AuditLog
from raksha.store.repository import IncidentStore
from raksha.store.serialize import iso
from raksha.store.shadow import ShadowComparison, shadow_comparison

__all__ = ["AUDIT_ACTION", "comparison_json", "shadow_report", "shadow_report_for_operator"]

AUDIT_ACTION = "report.shadow"


def shadow_report(
    store: IncidentStore,
    *,
    since: datetime,
    until: datetime,
    stations: Sequence[str] | None,
) -> ShadowComparison:
    """The comparison over `[since, until)` for `stations` (None: all), already scoped by
    the caller (`raksha.services.reports.report_stations`)."""
    return shadow_comparison(store.engine, since=since, until=until, station_ids=stations)


def shadow_report_for_operator(
    store: IncidentStore, *, actor: str, since: datetime, until: datetime
) -> ShadowComparison:
    """Every camera's comparison, for the deployment's operator (`raksha report shadow`)."""
    report = shadow_comparison(store.engine, since=since, until=until)
    AuditLog(store.engine).append(
        actor,
        AUDIT_ACTION,
        details={
            "since": iso(since),
            "until": iso(until),
            "events": sum(c.events for c in report.cameras.values()),
        },
    )
    return report


def comparison_json(report: ShadowComparison) -> dict[str, Any]:
    return {
        "since": iso(report.since),
        "until": iso(report.until),
        "cameras": {
            cam: {
                "models": sorted(c.models),
                "events": c.events,
                "overlap": c.overlap,
                "shadow_only": c.shadow_only,
                "overlap_judged": c.overlap_judged,
                "overlap_real": c.overlap_real,
                "live": c.live,
                "live_caught": c.live_caught,
            }
            for cam, c in report.cameras.items()
        },
    }
