"""Batch confirmation tokens: issued by the server, bound to one plan digest, single use, expiring."""

from __future__ import annotations

import datetime as dt

import pytest

from agentic_pipeline import errors
from agentic_pipeline.batch.confirmations import Confirmations

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def test_a_token_is_good_once_for_its_digest():
    c = Confirmations()
    token = c.issue("digest-a", T0)
    assert token != c.issue("digest-a", T0)  # random, not derived from the plan
    c.redeem(token, "digest-a", T0 + dt.timedelta(seconds=5))
    with pytest.raises(errors.StaleConfirmation, match="already used"):
        c.redeem(token, "digest-a", T0)


def test_a_token_for_other_books_is_refused_and_spent():
    c = Confirmations()
    token = c.issue("digest-a", T0)
    with pytest.raises(errors.StaleConfirmation, match="changed"):
        c.redeem(token, "digest-b", T0)
    with pytest.raises(errors.StaleConfirmation, match="already used"):
        c.redeem(token, "digest-a", T0)


def test_tokens_expire_and_the_store_is_bounded():
    c = Confirmations(ttl_seconds=60, max_tokens=3)
    old = c.issue("d", T0)
    with pytest.raises(errors.StaleConfirmation, match="expired"):
        c.redeem(old, "d", T0 + dt.timedelta(seconds=61))
    tokens = [c.issue(f"d{i}", T0) for i in range(4)]
    with pytest.raises(errors.StaleConfirmation, match="not issued"):  # the oldest made room
        c.redeem(tokens[0], "d0", T0)
    c.redeem(tokens[3], "d3", T0)
    assert len(c._issued) == 2
