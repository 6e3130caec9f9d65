"""The language switch in the page header: `/lang/hi` or `/lang/en` keeps the choice in the
`lang` cookie (a year, the whole site, SameSite=Lax) and goes back to the page it came from.
A browser without the cookie gets the best of its Accept-Language (`raksha.web.i18n`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import RedirectResponse, Response

from raksha.api.deps import Context, Principal, cookies_secure, require
from raksha.auth.access import Rule
from raksha.web import i18n
from raksha.web.errors import safe_next
from raksha.web.i18n import gettext as _

router = APIRouter(include_in_schema=False)


@router.get("/lang/{code}")
async def choose_language(
    request: Request,
    ctx: Context,
    _who: Annotated[Principal, Depends(require(Rule.PUBLIC))],
    code: Annotated[str, Path(min_length=2, max_length=8, pattern=r"^[a-z]+$")],
    next: Annotated[str | None, Query(max_length=2000)] = None,
) -> Response:
    if code not in i18n.LANGUAGES:
        raise HTTPException(404, _("There is no such language here."))
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        i18n.COOKIE,
        code,
        max_age=i18n.COOKIE_MAX_AGE_S,
        path="/",
        samesite="lax",
        secure=cookies_secure(request, ctx),
        httponly=False,  # a preference, not a secret
    )
    return response
