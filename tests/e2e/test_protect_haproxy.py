"""Issue 5 behind a real HAProxy (send-proxy-v2): auto-ban acts on the real client
address from the PROXY header, never on HAProxy itself."""

import smtplib
import socket
import ssl

import pytest

from harness import Postern, wait_until
from haproxy import BACKEND_SOURCE, HAProxy, Route

# 127.0.0.1 (HAProxy's own address towards Postern) is a trusted proxy; nothing is
# allow-listed, so only the trusted-proxy rule keeps HAProxy from being banned.
PROTECT = '[protect]\nallow_networks = []\nauth_failures = 5\nban_time = "1h"\nmax_connection_rate = 1000'
PROXY = '[proxy_protocol]\ntrusted_networks = ["127.0.0.1/32"]'


def ctx():
    c = ssl.create_default_context()
    c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
    return c


def auth_once(port, source, password):
    c = None
    try:
        c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=ctx(), source_address=(source, 0))
        c.ehlo("client")
        c.user, c.password = "alice@example.test", password
        return c.auth("PLAIN", c.auth_plain)[0]
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code
    except (smtplib.SMTPServerDisconnected, ssl.SSLError, ConnectionError, OSError):
        return "closed"
    finally:
        if c is not None:
            c.close()


def greeting(port, source):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.settimeout(10)
    try:
        return s.recv(200)
    except OSError:
        return b""
    finally:
        s.close()


@pytest.fixture
def stack(tmp_path):
    listeners = [("smtp", "required"), ("submissions", "required")]
    s = Postern(tmp_path / "p", listeners=listeners, proxy_toml=PROXY, protect_toml=PROTECT)
    with s:
        routes = [Route("smtp", s.ports["smtp"]), Route("submissions", s.ports["submissions"])]
        with HAProxy(tmp_path / "h", routes) as h:
            yield s, h


def test_ban_follows_the_real_client_through_haproxy(stack):
    s, h = stack
    port = h.ports["submissions"]
    assert [auth_once(port, "127.0.0.2", "wrong") for _ in range(5)] == [535] * 5
    ev = s.wait_event("protect.ban", client="127.0.0.2")
    assert "auth_failures" in ev["reason"]
    # 127.0.0.2 is refused through the same HAProxy: 421 on smtp, no TLS on submissions.
    assert greeting(h.ports["smtp"], "127.0.0.2").startswith(b"421 4.7.0")
    assert auth_once(port, "127.0.0.2", "alice-secret-1") == "closed"
    blocked = wait_until(lambda: s.log_events("protect.banned_connection"), timeout=10, what="banned_connection lines")
    assert blocked and all(e["client"].startswith("127.0.0.2:") for e in blocked)
    assert all(e["via"].startswith(BACKEND_SOURCE + ":") for e in blocked)
    # 127.0.0.3 through the same HAProxy keeps working, and HAProxy's address is never banned.
    assert auth_once(port, "127.0.0.3", "alice-secret-1") == 235
    assert not [e for e in s.log_events("protect.ban") if e["client"] == BACKEND_SOURCE]
    # `postern ban del` lifts it without a restart.
    s.cli("ban", "del", "127.0.0.2")
    assert auth_once(port, "127.0.0.2", "alice-secret-1") == 235


def test_ban_survives_restart(stack):
    s, h = stack
    for _ in range(5):
        auth_once(h.ports["submissions"], "127.0.0.2", "wrong")
    s.wait_event("protect.ban", client="127.0.0.2")
    assert s.stop() == 0
    s.start()
    s.wait_event("protect.bans_loaded")
    assert greeting(h.ports["smtp"], "127.0.0.2").startswith(b"421 4.7.0")
    assert greeting(h.ports["smtp"], "127.0.0.3").startswith(b"220 ")
