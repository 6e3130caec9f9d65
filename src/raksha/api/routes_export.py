"""The signed case export of one incident (supervisors of its station and the control room,
`Rule.INCIDENTS_EXPORT`): a zip of the decrypted evidence, the record, its history and audit
entries, a certificate and a signed manifest (`raksha.services.case_export`). Audited as
`evidence.exported`; `raksha evidence verify FILE.zip` checks it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from raksha.api.deps import Context, Principal, require, service_errors
from raksha.api.routes_incidents import IncidentId
from raksha.auth.access import Rule
from raksha.services.case_export import CaseExporter

router = APIRouter(tags=["incidents"])


@router.get(
    "/api/incidents/{incident_id}/export.zip",
    response_class=Response,
    responses={
        200: {"content": {"application/zip": {}}},
        404: {"description": "No such incident in your scope"},
        409: {"description": "An evidence file fails its SHA-256 check; nothing exported"},
        503: {"description": "No signing key (evidence.signing_key_file) or evidence key"},
    },
)
def export_case(
    incident_id: IncidentId,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.INCIDENTS_EXPORT))],
) -> Response:
    """The incident's signed case export (a zip)."""
    exporter = CaseExporter(
        ctx.store, ctx.audit, ctx.incidents.evidence_store, ctx.evidence.signing_key_file
    )
    with service_errors():
        export = exporter.export(who.caller, incident_id)
    return Response(
        export.data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{export.filename}"',
            "Cache-Control": "no-store",
            "X-Raksha-Manifest-SHA256": export.manifest_sha256,
        },
    )
