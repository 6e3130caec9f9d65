"""The audit log for auditors: the newest entries (filterable) and the chain check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from raksha.api.deps import Context, Principal, require
from raksha.api.routes_audit import list_audit, verify_audit
from raksha.auth.access import Rule
from raksha.web.i18n import gettext as _
from raksha.web.render import page

router = APIRouter(include_in_schema=False)


@router.get("/audit")
def audit_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.AUDIT_READ))],
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=256)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    entries = list_audit(
        ctx,
        who,
        after_seq=0,
        limit=limit,
        actor=actor or None,
        action=action or None,
        target=target or None,
        newest_first=True,
    ).entries
    return page(
        request,
        "audit.html",
        who,
        title=_("Audit log"),
        entries=entries,
        filters={"actor": actor or "", "action": action or "", "target": target or ""},
        limit=limit,
        verify=None,
    )


@router.get("/audit/verify")
def audit_verify_page(
    request: Request,
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.AUDIT_READ))],
) -> Response:
    result = verify_audit(ctx, who)
    entries = list_audit(
        ctx, who, after_seq=0, limit=20, actor=None, action=None, target=None, newest_first=True
    ).entries
    return page(
        request,
        "audit.html",
        who,
        title=_("Audit log: chain check"),
        entries=entries,
        filters={"actor": "", "action": "", "target": ""},
        limit=20,
        verify=result.model_dump(),
    )
