"""The dashboard's web pages (Jinja2 + htmx + Leaflet, served from this package; no CDN).

    from raksha.web import register_web, web_for
    app = create_app(cfg)                              # registers the pages by default
    app = create_app(cfg, store=s, web=web_for(cfg))   # with the site's hotspots and cameras

Pages: /login, /incidents (live list), /incidents/{id}, /map, /audit, /audit/verify, /users
(admins), and /unit (a patrol unit's phone: its job card, through its device token); static
files under /static. Every page declares its access rule like the API routes do. Each page
speaks English or Hindi (`raksha.web.i18n`: the switch in its header, `/lang/{code}`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from raksha.api.context import ApiContext
from raksha.site.config import SiteConfig
from raksha.web import (
    errors,
    pages_audit,
    pages_auth,
    pages_custody,
    pages_incidents,
    pages_lang,
    pages_map,
    pages_reports,
    pages_stats,
    pages_unit,
    pages_users,
    pages_watchlist,
)
from raksha.web.i18n import LanguageMiddleware
from raksha.web.settings import WebSettings
from raksha.web.site import Site, site_for

STATIC_DIR = Path(__file__).parent / "static"

__all__ = ["STATIC_DIR", "WebSettings", "register_web", "web_for"]


def register_web(
    app: FastAPI,
    ctx: ApiContext,
    *,
    site: Site | None = None,
    settings: WebSettings | None = None,
) -> None:
    """Add the pages, the static files and the HTML error pages to the dashboard app."""
    app.state.raksha_site = site if site is not None else site_for(ctx)
    app.state.raksha_web = settings if settings is not None else WebSettings.from_env()
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.add_middleware(LanguageMiddleware)
    for module in (
        pages_auth,
        pages_incidents,
        pages_custody,
        pages_map,
        pages_audit,
        pages_unit,
        pages_reports,
        pages_stats,
        pages_users,
        pages_watchlist,
        pages_lang,
    ):
        app.include_router(module.router)
    errors.install(app)


def web_for(
    cfg: SiteConfig, settings: WebSettings | None = None
) -> Callable[[FastAPI, ApiContext], None]:
    """A `web=` argument for create_app that knows the site's hotspots, units and cameras."""

    def register(app: FastAPI, ctx: ApiContext) -> None:
        register_web(app, ctx, site=Site.of(cfg), settings=settings)

    return register
