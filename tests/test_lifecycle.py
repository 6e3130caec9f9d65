"""The incident lifecycle rules, checked exhaustively and with hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raksha.errors import RakshaError
from raksha.incidents import (
    Action,
    IllegalTransition,
    IncidentState,
    InvalidActor,
    allowed_actions,
    apply_action,
    record_action,
)

S = IncidentState
A = Action


def test_the_happy_path() -> None:
    state = S.NEW
    for action, expected in [
        (A.ACKNOWLEDGE, S.ACKNOWLEDGED),
        (A.ESCALATE, S.ACKNOWLEDGED),
        (A.CONFIRM, S.CONFIRMED),
        (A.DISPATCH, S.DISPATCHED),
        (A.RESOLVE, S.RESOLVED),
    ]:
        state = apply_action(state, action)
        assert state is expected


@pytest.mark.parametrize("state", [S.NEW, S.ACKNOWLEDGED, S.CONFIRMED])
def test_dismiss_from_each_open_state_before_dispatch(state: IncidentState) -> None:
    assert apply_action(state, A.DISMISS) is S.DISMISSED


@pytest.mark.parametrize(
    ("state", "action"),
    [
        (S.NEW, A.DISPATCH),
        (S.NEW, A.CONFIRM),
        (S.NEW, A.RESOLVE),
        (S.ACKNOWLEDGED, A.DISPATCH),
        (S.ACKNOWLEDGED, A.ACKNOWLEDGE),
        (S.DISPATCHED, A.DISMISS),
        (S.DISPATCHED, A.CONFIRM),
        (S.RESOLVED, A.ESCALATE),
        (S.DISMISSED, A.ACKNOWLEDGE),
    ],
)
def test_illegal_transitions_raise_a_clear_error(state: IncidentState, action: Action) -> None:
    with pytest.raises(IllegalTransition) as info:
        apply_action(state, action)
    message = str(info.value)
    assert action.value in message and state.value in message
    assert "\n" not in message
    assert isinstance(info.value, RakshaError)


def test_terminal_states_allow_nothing() -> None:
    assert allowed_actions(S.RESOLVED) == []
    assert allowed_actions(S.DISMISSED) == []
    assert "none (closed)" in str(IllegalTransition(S.RESOLVED, A.CONFIRM))


def test_strings_are_accepted_and_unknown_names_are_refused() -> None:
    assert apply_action("NEW", "acknowledge") is S.ACKNOWLEDGED
    with pytest.raises(RakshaError, match="unknown incident action 'arrest'"):
        apply_action("NEW", "arrest")
    with pytest.raises(RakshaError, match="unknown incident state 'OPEN'"):
        apply_action("OPEN", "acknowledge")


def test_every_action_needs_an_actor_and_gets_a_time() -> None:
    rec = record_action(S.NEW, A.ACKNOWLEDGE, "  officer-12 ", note="on it")
    assert rec.actor == "officer-12"
    assert rec.from_state is S.NEW and rec.to_state is S.ACKNOWLEDGED
    assert rec.at.tzinfo is not None
    assert abs((datetime.now(UTC) - rec.at).total_seconds()) < 5
    for who in ("", "   "):
        with pytest.raises(InvalidActor, match="needs an actor"):
            record_action(S.NEW, A.ACKNOWLEDGE, who)
    with pytest.raises(ValueError, match="timezone-aware"):
        record_action(S.NEW, A.ACKNOWLEDGE, "officer-12", at=datetime(2026, 1, 1))


def test_automation_may_escalate_but_not_acknowledge() -> None:
    rec = record_action(S.NEW, A.ESCALATE, "system:escalation")
    assert rec.to_state is S.NEW
    with pytest.raises(InvalidActor, match="must be done by a person"):
        record_action(S.NEW, A.ACKNOWLEDGE, "system:escalation")


@given(st.lists(st.sampled_from(list(Action)), max_size=30))
def test_any_sequence_keeps_the_rules(actions: list[Action]) -> None:
    state = S.NEW
    visited = [state]
    for action in actions:
        before = state
        try:
            state = apply_action(state, action)
        except IllegalTransition:
            assert state is before  # a refused action changes nothing
            assert action not in allowed_actions(before)
            continue
        assert not before.is_terminal, "a terminal state accepted an action"
        if action is A.ESCALATE:
            assert state is before
        visited.append(state)
        if state is S.DISPATCHED:
            assert S.ACKNOWLEDGED in visited
            assert visited.index(S.ACKNOWLEDGED) < visited.index(S.DISPATCHED)
    first_terminal = next((i for i, s in enumerate(visited) if s.is_terminal), None)
    if first_terminal is not None:
        assert all(s is visited[first_terminal] for s in visited[first_terminal:])


@given(st.sampled_from(list(IncidentState)), st.sampled_from(list(Action)))
def test_allowed_actions_agrees_with_apply_action(state: IncidentState, action: Action) -> None:
    if action in allowed_actions(state):
        apply_action(state, action)
    else:
        with pytest.raises(IllegalTransition):
            apply_action(state, action)
