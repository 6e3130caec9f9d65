"""The patrol unit's phone page (`/unit`): its job card, acknowledge, on scene, duty, and the
phone's position sent back.

The page holds no data itself and needs no login: the officer types the unit id and its
device token once (kept in the phone's localStorage, never in a URL or cookie); the page's
script then calls the device routes of `raksha.api.routes_units` with
`Authorization: Bearer <token>`, which open that one unit only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from raksha.api.deps import Principal, require
from raksha.auth.access import Rule
from raksha.web.i18n import gettext as _
from raksha.web.render import page

router = APIRouter(include_in_schema=False)

#: The phone page may ask for the position (this site only) and nothing else of the device.
PERMISSIONS = "geolocation=(self), camera=(), microphone=(), payment=(), usb=()"


@router.get("/unit")
async def unit_page(
    request: Request,
    _who: Annotated[Principal, Depends(require(Rule.PUBLIC))],
) -> Response:
    return page(
        request,
        "unit.html",
        None,
        title=_("Patrol unit"),
        headers={"Permissions-Policy": PERMISSIONS, "Referrer-Policy": "no-referrer"},
    )
