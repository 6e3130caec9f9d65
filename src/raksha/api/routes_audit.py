"""GET /api/audit and GET /api/audit/verify (auditor only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from raksha.api.deps import Context, Principal, require
from raksha.api.schemas import AuditList, VerifyOut
from raksha.auth.access import Rule

router = APIRouter(tags=["audit"])


@router.get("/api/audit", response_model=AuditList)
def list_audit(
    ctx: Context,
    who: Annotated[Principal, Depends(require(Rule.AUDIT_READ))],
    after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    actor: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    target: Annotated[str | None, Query(max_length=256)] = None,
    newest_first: bool = True,
) -> AuditList:
    """Audit entries, newest first by default; page with `after_seq` (oldest first)."""
    entries = ctx.audit.entries(
        after_seq=after_seq,
        limit=limit,
        actor=actor,
        action=action,
        target=target,
        newest_first=newest_first and after_seq == 0,
    )
    ctx.audit.append(who.name, "audit.read", address=who.address, details={"count": len(entries)})
    return AuditList(entries=[e.to_json() for e in entries])


@router.get("/api/audit/verify", response_model=VerifyOut)
def verify_audit(
    ctx: Context, who: Annotated[Principal, Depends(require(Rule.AUDIT_READ))]
) -> VerifyOut:
    """Walk the hash chain: `ok`, and for a broken chain each entry where it breaks."""
    result = ctx.audit.verify()
    ctx.audit.append(
        who.name,
        "audit.verify",
        address=who.address,
        details={"ok": result.ok, "entries": result.entries},
    )
    return VerifyOut.model_validate(result.to_json())
