"""The data of the incident page's custody panel (`incident_custody.html`): the legal holds
and the signed export link, only for the roles that may use them (the forms post to
`raksha.web.pages_custody`)."""

from __future__ import annotations

from typing import Any

from raksha.api.context import ApiContext
from raksha.api.deps import Principal, service_errors
from raksha.auth.access import POLICIES, Rule
from raksha.services.holds import CASE_MAX, REASON_MAX, EvidenceLeft, HoldService
from raksha.store.holds import LegalHold
from raksha.web.i18n import localize


def _may(who: Principal, rule: Rule) -> bool:
    return who.user is not None and who.user.role in POLICIES[rule].roles


def custody_context(ctx: ApiContext, who: Principal, incident_id: str) -> dict[str, Any] | None:
    """The panel's data, or None for a role that may neither hold nor export."""
    may_hold, may_export = _may(who, Rule.EVIDENCE_HOLD), _may(who, Rule.INCIDENTS_EXPORT)
    if not (may_hold or may_export):
        return None
    holds: list[LegalHold] = []
    left: EvidenceLeft | None = None
    if may_hold:
        with service_errors():
            service = HoldService(ctx.store, ctx.audit)
            holds = service.of_incident(who.caller, incident_id)
            left = service.evidence_left(who.caller, incident_id)
    return {
        "may_hold": may_hold,
        # What a hold keeps: the files still on disk (0 when retention deleted them).
        "evidence_present": left.present if left is not None else None,
        "evidence_left": localize(left.message) if left is not None else None,
        "active": [h for h in holds if h.active],
        "lifted": [h for h in holds if not h.active],
        "export_url": f"/api/incidents/{incident_id}/export.zip" if may_export else None,
        "case_max": CASE_MAX,
        "reason_max": REASON_MAX,
    }
