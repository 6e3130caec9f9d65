"""User administration for admins: list, create, disable or enable, reset a password, change
a role or station. Used by the users page (`raksha.web.pages_users`).

    admin = UserAdmin(ctx.users, ctx.sessions, ctx.audit, known_stations=ctx.station_ids)
    user = admin.create(caller, "op_c", "operator", "a long passphrase", station_id="aliganj")
    admin.set_disabled(caller, "op_c", True)       # their sessions end at once

Every method checks the caller may administer users (`Rule.USERS_ADMIN`, else `Denied`) and
writes one audit entry per change with the admin as actor (never a password). Refusals are
`ServiceError`s with a one-line reason: `Conflict` for a name taken, `Invalid` for a weak
password or a role without its station, `NotFound` for an unknown user, `BadRequest` for an
admin locking themselves out.
"""

from __future__ import annotations

from collections.abc import Sequence

from raksha.audit.log import AuditLog
from raksha.auth.access import Rule, check
from raksha.auth.errors import AuthError
from raksha.auth.passwords import password_problem
from raksha.auth.roles import Role
from raksha.auth.sessions import SessionStore
from raksha.auth.users import USERNAME, User, UserStore
from raksha.errors import N_, Message, message_of
from raksha.services.errors import BadRequest, Conflict, Invalid, NotFound
from raksha.services.incidents import Caller
from raksha.store import push as push_rows

ROLE_LABELS = {
    Role.OPERATOR: "operator",
    Role.SUPERVISOR: "supervisor",
    Role.CONTROL_ROOM: "control room",
    Role.AUDITOR: "auditor",
    Role.ADMIN: "admin",
}


class UserAdmin:
    def __init__(
        self,
        users: UserStore,
        sessions: SessionStore,
        audit: AuditLog,
        *,
        known_stations: Sequence[str] = (),
    ) -> None:
        self.users = users
        self.sessions = sessions
        self.audit = audit
        #: The configured stations (empty: any station id is accepted).
        self.known_stations = list(known_stations)

    # ---- checks ---------------------------------------------------------------------------

    @staticmethod
    def _allowed(caller: Caller) -> None:
        check(caller.user, Rule.USERS_ADMIN)

    @staticmethod
    def _role(value: Role | str) -> Role:
        if isinstance(value, Role):
            return value
        try:
            return Role(value.strip().lower())
        except ValueError:
            raise Invalid(Message(N_("Unknown role %(role)r."), role=value)) from None

    def _station(self, role: Role, station_id: str | None) -> str | None:
        """The station the role needs (None for roles not bound to one), or `Invalid`."""
        station = (station_id or "").strip() or None
        label = ROLE_LABELS[role]
        if role.station_bound and station is None:
            template = (
                N_("An %(role)s works for one station: choose it.")
                if label[:1] in "aeiou"
                else N_("A %(role)s works for one station: choose it.")
            )
            raise Invalid(Message(template, role=Message(label)))
        if not role.station_bound:
            return None  # a station chosen for another role is ignored, not an error
        if self.known_stations and station not in self.known_stations:
            raise Invalid(Message(N_("Unknown station %(station)r."), station=station))
        return station

    def _get(self, username: str) -> User:
        user = self.users.get(username)
        if user is None:
            raise NotFound(Message(N_("No user named %(user)r."), user=username))
        return user

    @staticmethod
    def _password_ok(password: str, username: str) -> None:
        problem = password_problem(password, username)
        if problem is not None:
            raise Invalid(Message(N_("Weak password: %(problem)s."), problem=problem))

    def _audit(
        self,
        caller: Caller,
        action: str,
        user: User,
        details: dict[str, object] | None = None,
    ) -> None:
        self.audit.append(
            caller.name,
            action,
            target=f"user:{user.username}",
            station_id=user.station_id,
            address=caller.address,
            details=details,
        )

    # ---- reading ----------------------------------------------------------------------------

    def list(self, caller: Caller) -> list[User]:
        """Every user, by name (never a password hash)."""
        self._allowed(caller)
        return self.users.list()

    # ---- changes ----------------------------------------------------------------------------

    def create(
        self,
        caller: Caller,
        username: str,
        role: Role | str,
        password: str,
        *,
        station_id: str | None = None,
    ) -> User:
        """A new user with an initial password (the password policy applies). Audited as
        `user.add`."""
        self._allowed(caller)
        name = username.strip()
        if not USERNAME.match(name):
            raise Invalid(
                Message(
                    N_(
                        "User names have 2 to 64 letters, digits or . _ @ -, starting with a "
                        "letter or digit."
                    )
                )
            )
        r = self._role(role)
        station = self._station(r, station_id)
        if self.users.get(name) is not None:
            raise Conflict(Message(N_("A user named %(user)r already exists."), user=name))
        self._password_ok(password, name)
        try:
            user = self.users.add(
                name, r, password, station_id=station, known_stations=self.known_stations or None
            )
        except AuthError as exc:
            if "exists" in str(exc):
                raise Conflict(
                    Message(N_("A user named %(user)r already exists."), user=name)
                ) from None
            raise Invalid(message_of(exc)) from None
        self._audit(caller, "user.add", user, {"role": user.role.value})
        return user

    def set_disabled(self, caller: Caller, username: str, disabled: bool) -> User:
        """Disable a user (their sessions end at once) or enable them again. Audited as
        `user.disable` / `user.enable`."""
        self._allowed(caller)
        user = self._get(username)
        if disabled and user.id == caller.user.id:
            raise BadRequest(Message(N_("You cannot disable your own account.")))
        try:
            user = self.users.set_disabled(user.username, disabled)
        except AuthError as exc:
            raise NotFound(message_of(exc)) from None
        ended = self.sessions.end_all_for(user.id) if disabled else 0
        if disabled:  # nor are they told of incidents any more
            push_rows.unsubscribe(self.users.engine, user.username)
        action = "user.disable" if disabled else "user.enable"
        self._audit(caller, action, user, {"sessions_ended": ended})
        return user

    def reset_password(self, caller: Caller, username: str, password: str) -> User:
        """Set a user's password (the policy applies); every session of theirs ends. Audited
        as `user.password_set`, as `raksha users passwd` is."""
        self._allowed(caller)
        user = self._get(username)
        self._password_ok(password, user.username)
        try:
            user = self.users.set_password(user.username, password)
        except AuthError as exc:
            raise Invalid(
                Message(N_("Weak password: %(problem)s."), problem=message_of(exc))
            ) from None
        ended = self.sessions.end_all_for(user.id)
        self._audit(caller, "user.password_set", user, {"sessions_ended": ended})
        return user

    def change_role(
        self, caller: Caller, username: str, role: Role | str, *, station_id: str | None = None
    ) -> User:
        """Give a user another role or station; their sessions end (they log in again with
        the new scope). Audited as `user.role_changed` with the old and new role and station."""
        self._allowed(caller)
        before = self._get(username)
        r = self._role(role)
        station = self._station(r, station_id)
        if before.role is r and before.station_id == station:
            raise BadRequest(
                Message(N_("%(user)s already has this role and station."), user=before.username)
            )
        if before.id == caller.user.id and r is not before.role:
            raise BadRequest(Message(N_("You cannot change your own role.")))
        try:
            user = self.users.set_role(
                before.username,
                r,
                station_id=station,
                known_stations=self.known_stations or None,
            )
        except AuthError as exc:
            raise Invalid(message_of(exc)) from None
        ended = self.sessions.end_all_for(user.id)
        # Notices follow the new scope: the browser subscribes again at the next login.
        push_rows.unsubscribe(self.users.engine, user.username)
        self._audit(
            caller,
            "user.role_changed",
            user,
            {
                "from_role": before.role.value,
                "from_station": before.station_id,
                "role": user.role.value,
                "station": user.station_id,
                "sessions_ended": ended,
            },
        )
        return user
