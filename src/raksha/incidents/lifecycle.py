"""The incident lifecycle: which action is allowed in which state, and what it leads to.

    NEW --acknowledge--> ACKNOWLEDGED --confirm--> CONFIRMED --dispatch--> DISPATCHED
    DISPATCHED --resolve--> RESOLVED        CONFIRMED --resolve--> RESOLVED (helped on the spot)
    NEW | ACKNOWLEDGED | CONFIRMED --dismiss--> DISMISSED (a false alarm)
    any open state --escalate--> the same state (recorded in the history only)
    DISPATCHED --unit_ack | on_scene | reassign--> DISPATCHED (the unit's progress)
    any open state --sos_join | sos_cancel--> the same state (a person's panic signal, or
        their own "I am safe": recorded; an officer still closes the case)

RESOLVED and DISMISSED are terminal: every action on them is refused. The only way into
DISPATCHED is through CONFIRMED, and the only way into CONFIRMED is through ACKNOWLEDGED, so
nothing is dispatched without an acknowledgement. Every action names its actor; actors whose
name starts with `system:` (automation such as the escalation timer) may only escalate, so the
acknowledgement, and every other state change, is a person's.

A dismissal may carry a reason (`DismissReason`), and only a dismissal: the officers' paths
(`require_reason`, asked by the incident service) refuse one without. Dismissals stored
before reasons were asked for keep no reason and read as "unspecified".

Pure functions; the store applies them inside a transaction.
"""

from __future__ import annotations

from datetime import datetime

from raksha.errors import N_, Message, RakshaError
from raksha.incidents.model import Action, ActionRecord, DismissReason, IncidentState, utcnow

S = IncidentState

#: (state, action) -> new state. Missing pairs are illegal.
TRANSITIONS: dict[tuple[IncidentState, Action], IncidentState] = {
    (S.NEW, Action.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.ACKNOWLEDGED, Action.CONFIRM): S.CONFIRMED,
    (S.CONFIRMED, Action.DISPATCH): S.DISPATCHED,
    (S.CONFIRMED, Action.RESOLVE): S.RESOLVED,
    (S.DISPATCHED, Action.RESOLVE): S.RESOLVED,
    (S.NEW, Action.DISMISS): S.DISMISSED,
    (S.ACKNOWLEDGED, Action.DISMISS): S.DISMISSED,
    (S.CONFIRMED, Action.DISMISS): S.DISMISSED,
    **{(s, Action.ESCALATE): s for s in IncidentState if not s.is_terminal},
    **{(s, Action.SOS_JOIN): s for s in IncidentState if not s.is_terminal},
    **{(s, Action.SOS_CANCEL): s for s in IncidentState if not s.is_terminal},
    (S.DISPATCHED, Action.UNIT_ACK): S.DISPATCHED,
    (S.DISPATCHED, Action.ON_SCENE): S.DISPATCHED,
    (S.DISPATCHED, Action.REASSIGN): S.DISPATCHED,
}

#: Actor names with this prefix are automation, not people.
SYSTEM_ACTOR_PREFIX = "system:"
#: What automation may do.
SYSTEM_ACTIONS: frozenset[Action] = frozenset({Action.ESCALATE, Action.REASSIGN})


class IllegalTransition(RakshaError):
    """An action that the incident's current state does not allow."""

    def __init__(self, state: IncidentState, action: Action) -> None:
        self.state = state
        self.action = action
        # An officer is told what they can do (not the unit's, the panic signal's or the
        # timer's own steps).
        allowed = officer_actions(state)
        super().__init__(
            Message(
                N_("cannot %(action)s an incident that is %(state)s; allowed: %(allowed)s"),
                action=Message(action.value),
                state=Message(state.value),
                allowed=tuple(Message(a.value) for a in allowed)
                if allowed
                else Message(N_("none (closed)")),
            )
        )


#: The states' and actions' names as a refusal names them, for the dashboard's catalogue
#: (a page shows "cannot dispatch an incident that is NEW" in its own language).
STATE_AND_ACTION_WORDS = (
    N_("NEW"),
    N_("ACKNOWLEDGED"),
    N_("CONFIRMED"),
    N_("DISPATCHED"),
    N_("RESOLVED"),
    N_("DISMISSED"),
    N_("acknowledge"),
    N_("confirm"),
    N_("dispatch"),
    N_("dismiss"),
    N_("resolve"),
    N_("escalate"),
    N_("on_scene"),
    N_("unit_ack"),
    N_("sos_join"),
    N_("sos_cancel"),
    N_("reassign"),
)


class InvalidActor(RakshaError):
    """An action without a (human, where required) actor."""


class InvalidReason(RakshaError):
    """A dismissal without a (known) reason, or a reason on another action."""


def _reasons() -> str:
    return ", ".join(r.value for r in DismissReason)


def dismiss_reason(
    action: Action | str, reason: DismissReason | str | None
) -> DismissReason | None:
    """The reason as a `DismissReason` (None when none is given), or InvalidReason for an
    unknown one or a reason on an action other than dismiss."""
    if reason is None or reason == "":
        return None
    if _action(action) is not Action.DISMISS:
        raise InvalidReason(Message(N_("only a dismissal takes a reason")))
    try:
        return DismissReason(reason)
    except ValueError:
        raise InvalidReason(
            Message(
                N_("unknown dismissal reason %(reason)r; one of: %(known)s"),
                reason=str(reason),
                known=_reasons(),
            )
        ) from None


def require_reason(action: Action | str, reason: DismissReason | str | None) -> None:
    """InvalidReason when a person dismisses without saying why (or gives a bad reason)."""
    if dismiss_reason(action, reason) is None and _action(action) is Action.DISMISS:
        raise InvalidReason(
            Message(N_("say why the incident is dismissed: one of %(known)s"), known=_reasons())
        )


#: What an officer's buttons (and the officers' API) offer; the others come from a unit's
#: device (unit_ack), a panic signal (sos_join, sos_cancel) or the timer (reassign).
OFFICER_ACTIONS: tuple[Action, ...] = (
    Action.ACKNOWLEDGE,
    Action.CONFIRM,
    Action.DISPATCH,
    Action.DISMISS,
    Action.RESOLVE,
    Action.ESCALATE,
    Action.ON_SCENE,
)


def allowed_actions(state: IncidentState) -> list[Action]:
    return [a for a in Action if (state, a) in TRANSITIONS]


def officer_actions(state: IncidentState) -> list[Action]:
    """The actions an officer may take in `state` (the buttons)."""
    return [a for a in OFFICER_ACTIONS if (state, a) in TRANSITIONS]


def apply_action(state: IncidentState | str, action: Action | str) -> IncidentState:
    """The state after `action`, or IllegalTransition when `state` does not allow it."""
    st = _state(state)
    act = _action(action)
    try:
        return TRANSITIONS[(st, act)]
    except KeyError:
        raise IllegalTransition(st, act) from None


def is_system_actor(actor: str) -> bool:
    return actor.startswith(SYSTEM_ACTOR_PREFIX)


def check_actor(action: Action | str, actor: str) -> str:
    """The actor, stripped, or InvalidActor when it is empty or automation acting as a person."""
    act = _action(action)
    who = actor.strip() if isinstance(actor, str) else ""
    if not who:
        raise InvalidActor(f"{act.value} needs an actor (who is doing it)")
    if is_system_actor(who) and act not in SYSTEM_ACTIONS:
        raise InvalidActor(f"{act.value} must be done by a person, not by automation ({who!r})")
    return who


def record_action(
    state: IncidentState | str,
    action: Action | str,
    actor: str,
    *,
    at: datetime | None = None,
    note: str | None = None,
    unit_id: str | None = None,
    incident_id: str = "",
    reason: DismissReason | str | None = None,
) -> ActionRecord:
    """Validate an action by `actor` on an incident in `state` and return its history record."""
    act = _action(action)
    why = dismiss_reason(act, reason)
    who = check_actor(act, actor)
    st = _state(state)
    new_state = apply_action(st, act)
    when = at if at is not None else utcnow()
    if when.tzinfo is None:
        raise ValueError("action time must be timezone-aware")
    return ActionRecord(
        action=act,
        from_state=st,
        to_state=new_state,
        actor=who,
        at=when,
        note=note or None,
        unit_id=unit_id or None,
        incident_id=incident_id,
        reason=why,
    )


def _state(value: IncidentState | str) -> IncidentState:
    try:
        return IncidentState(value)
    except ValueError:
        known = ", ".join(s.value for s in IncidentState)
        raise RakshaError(f"unknown incident state {value!r}; known: {known}") from None


def _action(value: Action | str) -> Action:
    try:
        return Action(value)
    except ValueError:
        known = ", ".join(a.value for a in Action)
        raise RakshaError(f"unknown incident action {value!r}; known: {known}") from None
