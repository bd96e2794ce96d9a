"""The fake clock (a port fake, so it is tested) and settings precedence."""

from __future__ import annotations

import datetime as dt

import pytest

from agentic_pipeline import config, errors
from agentic_pipeline.clock import FakeClock, SystemClock


def test_fake_clock_moves_only_when_told():
    c = FakeClock()
    start = c.now()
    assert c.now() == start
    c.advance(hours=49)
    assert c.now() - start == dt.timedelta(hours=49)
    c.sleep(1.5)
    assert c.now() - start == dt.timedelta(hours=49, seconds=1.5)
    with pytest.raises(ValueError):
        FakeClock(dt.datetime(2026, 1, 1))


def test_system_clock_is_aware_utc():
    assert SystemClock().now().utcoffset() == dt.timedelta(0)


def test_environment_overrides_toml_and_dicts_merge(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('lease_seconds = 99\nstuck_multiplier = 3.0\n[stage_timeouts]\nprocessing = 5\n')
    s = config.load(environ={"AGENTIC_PIPELINE_CONFIG": str(toml), "AGENTIC_PIPELINE_LEASE_SECONDS": "70",
                             "AGENTIC_PIPELINE_STAGE_TIMEOUTS": '{"embedding": 11}'})
    assert s.lease_seconds == 70 and s.stuck_multiplier == 3.0
    assert s.stage_timeouts["embedding"] == 11 and s.stage_timeouts["hashing"] == 60


def test_bad_settings_are_clear_errors(tmp_path):
    with pytest.raises(errors.ConfigError, match="lease_seconds"):
        config.load(environ={"AGENTIC_PIPELINE_LEASE_SECONDS": "soon"})
    bad = tmp_path / "c.toml"
    bad.write_text("lease_secs = 1\n")
    with pytest.raises(errors.ConfigError, match="unknown settings.*lease_secs"):
        config.load(environ={"AGENTIC_PIPELINE_CONFIG": str(bad)})


@pytest.mark.parametrize("given,expected", [
    ("postgresql://u@h:5432/d", "postgresql+psycopg://u@h:5432/d"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_db_urls(given, expected, tmp_path):
    assert config.resolve_db_url(given, tmp_path) == expected
    assert config.resolve_db_url("", tmp_path) == f"sqlite:///{tmp_path / 'pipeline.db'}"
    assert config.resolve_db_url("rel.db", tmp_path).startswith("sqlite:////")
    with pytest.raises(errors.ConfigError):
        config.resolve_db_url("mysql://x", tmp_path)


@pytest.mark.parametrize("db", ["mysql://admin:hunter2@db.example/lib", "postgresql://admin:hunter2@db:abc/x"])
def test_a_bad_database_url_is_a_config_error_that_never_shows_the_password(db, tmp_path):
    from agentic_pipeline.db.engine import Database

    with pytest.raises(errors.ConfigError) as info:
        Database(config.resolve_db_url(db, tmp_path))
    assert "hunter2" not in str(info.value) and "admin:***@" in str(info.value)
    assert config.mask_password("postgresql://u@h/x") == "postgresql://u@h/x"


def test_a_configured_retention_policy_replaces_the_default_whole():
    got = config.load({"retention_days": {"*": 3650}}, environ={}).retention_days
    assert got == {"*": 3650}
    env = config.load(environ={"AGENTIC_PIPELINE_RETENTION_DAYS": '{"BATCH_*": 30}'}).retention_days
    assert env == {"BATCH_*": 30}  # everything else is kept forever
    assert config.load(environ={}).retention_days["APPROVED"] == 365  # the default when nothing is configured
    for bad in ({"APPROVED": 0}, {"APPROVED": -5}, {"APPROVED": 1.5}, {"APPROVED": "x"}):
        with pytest.raises(errors.ConfigError, match="whole days"):
            config.load({"retention_days": bad}, environ={})
    # other dict settings still override one key at a time
    assert config.load({"stage_timeouts": {"hashing": 5}}, environ={}).stage_timeouts["processing"] == 900


def test_a_lease_must_outlive_a_missed_heartbeat():
    with pytest.raises(errors.ConfigError, match="at least twice heartbeat_seconds"):
        config.load({"lease_seconds": 20, "heartbeat_seconds": 15}, environ={})
    with pytest.raises(errors.ConfigError):
        config.load({"heartbeat_seconds": 0}, environ={})
    assert config.load({"lease_seconds": 30, "heartbeat_seconds": 15}, environ={}).lease_seconds == 30
