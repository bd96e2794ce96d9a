"""The state machine is one pure table; random walks through it never reach a forbidden state."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agentic_pipeline import errors
from agentic_pipeline.pipeline import states
from agentic_pipeline.pipeline.states import State


def test_fifteen_states_with_lowercase_values():
    assert len(State) == 15
    assert all(s.value == s.name.lower() for s in State)


def test_sets_are_consistent():
    assert states.WORKING.isdisjoint(states.WAITING)
    assert states.TERMINAL.isdisjoint(states.WORKING | states.WAITING)
    assert not states.TRANSITIONS[State.ARCHIVED]
    for s in states.WORKING:
        assert states.NEXT_ON_SUCCESS[s] in states.TRANSITIONS[s]
        assert State.NEEDS_RETRY in states.TRANSITIONS[s]
    # a retry can resume at every working stage
    assert states.WORKING <= states.TRANSITIONS[State.NEEDS_RETRY]


def test_the_happy_path_is_allowed():
    path = [State.DETECTED, State.HASHING, State.CLASSIFYING, State.SELECTING_STRATEGY, State.PROCESSING,
            State.VALIDATING, State.PENDING_APPROVAL, State.APPROVED, State.EMBEDDING, State.COMPLETE]
    assert all(states.can_transition(a, b) for a, b in zip(path, path[1:]))
    assert not states.can_transition(State.DETECTED, State.COMPLETE)
    assert not states.can_transition(State.PENDING_APPROVAL, State.EMBEDDING)


def test_parse_accepts_either_case_and_lists_valid_states():
    assert states.parse("PENDING_APPROVAL") is State.PENDING_APPROVAL
    try:
        states.parse("stuck")
    except errors.InputError as exc:
        assert "pending_approval" in str(exc)
    else:
        raise AssertionError("parse accepted an unknown state")


class Machine:
    """A model that applies only allowed moves, as the repository does."""

    def __init__(self):
        self.state = State.DETECTED
        self.trace = [self.state]

    def move(self, dst: State) -> bool:
        if not states.can_transition(self.state, dst):
            return False
        self.state = dst
        self.trace.append(dst)
        return True


@settings(max_examples=300)
@given(st.lists(st.sampled_from(list(State)), max_size=60))
def test_random_sequences_never_reach_a_forbidden_state(moves):
    m = Machine()
    for dst in moves:
        m.move(dst)
    for a, b in zip(m.trace, m.trace[1:]):
        assert b in states.TRANSITIONS[a]
    assert m.trace[0] is State.DETECTED


@settings(max_examples=25, deadline=None)
@given(st.lists(st.sampled_from(list(State)), min_size=1, max_size=25))
def test_random_sequences_through_the_real_repository(tmp_path_factory, moves):
    """The store enforces the same table: forbidden moves raise and leave the state unchanged."""
    from tests.conftest import open_app
    from agentic_pipeline.db import migrations
    from agentic_pipeline.db.engine import Database

    path = tmp_path_factory.mktemp("hyp") / "p.db"
    db = Database(f"sqlite:///{path}")
    migrations.upgrade(db)
    db.dispose()
    with open_app(f"sqlite:///{path}") as app:
        p = app.pipelines.create(source_path="/x.epub", actor="human:t")
        current = State.DETECTED
        for dst in moves:
            if states.can_transition(current, dst):
                current = app.pipelines.transition(p.id, dst, expect=current, actor="human:t").state
            else:
                try:
                    app.pipelines.transition(p.id, dst, expect=current, actor="human:t")
                except errors.InvalidTransition:
                    pass
                else:
                    raise AssertionError(f"{current} -> {dst} was allowed")
            assert app.pipelines.get(p.id).state is current
        trace = [h["to_state"] for h in app.pipelines.history(p.id)]
        for a, b in zip(trace, trace[1:]):
            assert states.can_transition(State(a), State(b))
