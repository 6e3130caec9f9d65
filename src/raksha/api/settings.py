"""Settings of the dashboard server (from `raksha serve` options and the environment)."""

from __future__ import annotations

from dataclasses import dataclass, field

from raksha.auth.ratelimit import Limits


@dataclass(frozen=True, slots=True)
class ApiSettings:
    #: A session ends after this long without a request...
    session_idle_s: float = 1800.0
    #: ...and at the latest this long after login.
    session_absolute_s: float = 12 * 3600.0
    #: Secure cookies: True/False, or None to set them when the request came over https.
    secure_cookies: bool | None = None
    login_limits: Limits = field(default_factory=Limits)
    #: Environment variable holding a bearer token for /metrics (None: admins only).
    metrics_token_env: str | None = "RAKSHA_METRICS_TOKEN"
    #: How often the event hub looks for new or changed incidents.
    events_poll_s: float = 0.5
    #: A comment line is sent this often on an idle event stream (and the session re-checked).
    events_keepalive_s: float = 15.0
    #: One `incident.list` audit entry per user and filter at most this often (seconds; the
    #: entry counts the refreshes it covers). 0 audits every list. See raksha.services.
    list_audit_every_s: float = 300.0
    #: Roles that must give a second factor (a TOTP code) at login: those who see every
    #: station or may unblur evidence. An account of these roles without one set up cannot
    #: log in until an admin runs `raksha users totp NAME`.
    totp_roles: tuple[str, ...] = ("admin", "supervisor", "control_room")
    #: Request bodies larger than this are refused (413) before they are read.
    max_body_bytes: int = 256 * 1024
    #: Register the web UI (raksha.web) when that package is installed.
    web: bool = True
    #: Where the configuration came from (shown on the pages; `config.loaded` entries record
    #: its path and SHA-256 when `raksha serve` starts).
    config_path: str | None = None
    #: Run the escalation timer (and the MQTT intake of positions and SOS, when MQTT is
    #: configured) in this process; `raksha serve` does, tests that build an app do not.
    background_jobs: bool = False


COOKIE_SESSION = "raksha_session"
#: The session cookie's name over https: the `__Host-` prefix makes browsers refuse it unless
#: it is Secure, host-only and for path `/` (no subdomain or plain-http page can plant one).
COOKIE_SESSION_SECURE = "__Host-raksha_session"
HEADER_CSRF = "X-CSRF-Token"
FORM_CSRF = "csrf_token"
