"""The pure parts of the dashboard's security: who needs a token, signed login cookies, local redirects."""

from __future__ import annotations

from agentic_pipeline.interfaces.web import security
from agentic_pipeline.interfaces.web.pages import common


def test_loopback_needs_no_token_other_addresses_do():
    for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2"):
        options, generated = security.options_for(host, user="a", read_only=False, token=None)
        assert options.token is None and not generated, host
    options, generated = security.options_for("0.0.0.0", user="a", read_only=False, token=None)
    assert generated and len(options.token) >= 24
    options, generated = security.options_for("192.168.1.5", user="a", read_only=False, token="chosen-token")
    assert options.token == "chosen-token" and not generated
    options, _ = security.options_for("0.0.0.0", user="a", read_only=True, token=None)
    assert options.read_only and options.token is None  # nothing to protect


def test_login_cookie_is_signed_and_bound_to_the_token():
    options = security.Options(user="srv", token="t0ken-abcdefgh")
    cookie = options.auth_cookie("alice")
    assert options.cookie_user(cookie) == "alice"
    assert options.cookie_user(cookie.replace("alice", "mallory")) is None
    assert options.cookie_user("alice.") is None and options.cookie_user(None) is None
    other = security.Options(user="srv", token="another-token", secret=options.secret)
    assert other.cookie_user(cookie) is None  # a new token logs everyone out
    assert options.token_ok("t0ken-abcdefgh") and not options.token_ok("t0ken") and not options.token_ok(None)
    assert security.Options(user="x y<z>").actor == "web:x_y_z_"


def test_redirects_stay_on_the_site():
    assert common.local_url("/queue?state=detected", "/") == "/queue?state=detected"
    for bad in ("//evil.example/", "https://evil.example/", "/\\evil.example", "", None, "queue"):
        assert common.local_url(bad, "/queue") == "/queue", bad
