"""Request and response bodies of the JSON API (they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ActionName = Literal["acknowledge", "confirm", "dispatch", "dismiss", "resolve", "escalate"]


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(BaseModel):
    username: str
    role: str
    station_id: str | None
    disabled: bool = False
    created_at: str | None = None
    last_login_at: str | None = None


class LoginOut(BaseModel):
    user: UserOut
    csrf_token: str = Field(description="Send it as X-CSRF-Token on every POST.")
    expires_at: str


class MeOut(BaseModel):
    user: UserOut
    csrf_token: str | None


class OkOut(BaseModel):
    ok: bool = True


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: ActionName
    note: str | None = Field(None, max_length=2000)
    unit_id: str | None = Field(None, max_length=128)
    expected_version: int | None = Field(
        None, ge=1, le=2**31 - 1, description="Refuse (409) if the incident changed since."
    )


class ActionOut(BaseModel):
    action: dict[str, Any]
    incident: dict[str, Any]


class IncidentList(BaseModel):
    incidents: list[dict[str, Any]]
    count: int


class CameraList(BaseModel):
    cameras: list[dict[str, Any]]


class MapOut(BaseModel):
    stations: list[dict[str, Any]]
    hotspots: list[dict[str, Any]]
    patrol_units: list[dict[str, Any]]
    cameras: list[dict[str, Any]]


class AuditList(BaseModel):
    entries: list[dict[str, Any]]


class VerifyOut(BaseModel):
    ok: bool
    entries: int
    head: dict[str, Any] = Field(description="Newest entry number and hash; keep a copy.")
    problems: list[dict[str, Any]] = Field(description="Where the chain breaks (seq, problem).")
    actions: dict[str, int] = Field(description="Entries per action in the verified chain.")
    recent: list[dict[str, Any]] = Field(description="The newest entries verified.")


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=2, max_length=64)
    role: Literal["operator", "supervisor", "control_room", "auditor", "admin"]
    station_id: str | None = Field(None, max_length=128)
    password: str = Field(min_length=10, max_length=1024)


class UserList(BaseModel):
    users: list[UserOut]


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
