"""Errors on web pages: a login page instead of 401, an HTML page instead of JSON.

API routes (/api/..., /healthz, /metrics, the schema) keep FastAPI's JSON replies.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from raksha.api.deps import current_principal
from raksha.web.i18n import N_, localize
from raksha.web.i18n import gettext as _
from raksha.web.render import page

NOT_WEB = ("/api/", "/healthz", "/metrics", "/openapi.json", "/docs", "/redoc")

MESSAGES = {
    403: N_("You may not open this page."),
    404: N_("There is nothing here, or it is not in your station's scope."),
    409: N_("This changed meanwhile; reload and try again."),
    410: N_("This file is gone."),
}


def is_web_path(path: str) -> bool:
    return not path.startswith(NOT_WEB)


def safe_next(target: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def login_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login" if here in ("/", "/login") else f"/login?next={quote(here, safe='/')}"


async def web_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if not is_web_path(request.url.path):
        return await http_exception_handler(request, exc)
    if exc.status_code == 401:
        target = login_url(request)
        if request.headers.get("HX-Request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)
    who = await current_principal(request)
    detail = localize(exc.detail)
    message = _(MESSAGES[exc.status_code]) if exc.status_code in MESSAGES else detail
    return page(
        request,
        "error.html",
        who,
        status_code=exc.status_code,
        title=_("Error %(status)d") % {"status": exc.status_code},
        status=exc.status_code,
        message=message,
        detail=detail,
        headers=exc.headers,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, web_http_error)
