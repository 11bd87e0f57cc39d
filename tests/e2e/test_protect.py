"""Issue 5: auto-ban and limits on the real client address. Direct clients here come from
other loopback addresses (127.0.0.2, 127.0.0.3); test_protect_haproxy.py repeats the
key cases through a real HAProxy."""

import base64
import smtplib
import socket
import ssl
import time

import pytest

from harness import Postern, wait_until

PROTECT = ('[protect]\nallow_networks = ["127.0.0.9/32"]\nauth_failures = 5\nwindow = "10m"\n'
           'ban_time = "1h"\nmax_connections_per_client = 3\nmax_connection_rate = 1000')


def ctx():
    c = ssl.create_default_context()
    c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
    return c


def fail_auth(port, source, times):
    """Fails AUTH `times` times (new connection each, as brute-forcers do)."""
    codes = []
    for _ in range(times):
        c = None
        try:
            c = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=ctx(), source_address=(source, 0))
            c.ehlo("bf")
            c.user, c.password = "alice@example.test", "wrong-password"
            c.auth("PLAIN", c.auth_plain)   # one mechanism, one failure per connection
        except smtplib.SMTPAuthenticationError as e:
            codes.append(e.smtp_code)
        except (smtplib.SMTPServerDisconnected, ssl.SSLError, ConnectionError):
            codes.append("closed")
        finally:
            if c is not None:
                c.close()
    return codes


def greeting(port, source):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    s.settimeout(10)
    try:
        data = s.recv(200)
    except OSError:
        data = b""
    s.close()
    return data


@pytest.fixture
def server(tmp_path):
    with Postern(tmp_path / "p", protect_toml=PROTECT) as s:
        yield s


def test_auth_failures_ban_the_client_and_not_others(server):
    port = server.ports["submissions"]
    assert fail_auth(port, "127.0.0.2", 5) == [535] * 5
    ev = server.wait_event("protect.ban", client="127.0.0.2")
    assert "5 auth_failures" in ev["reason"] and ev["duration"] == "1h"
    # Banned: 421 on plaintext before anything else; TLS port closes without a handshake.
    assert greeting(server.ports["smtp"], "127.0.0.2").startswith(b"421 4.7.0")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        with smtplib.SMTP_SSL("127.0.0.1", port, timeout=5, context=ctx(), source_address=("127.0.0.2", 0)):
            pass
    wait_until(lambda: server.log_events("protect.banned_connection"), timeout=10, what="protect.banned_connection")
    # Another client keeps working.
    with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=ctx(), source_address=("127.0.0.3", 0)) as c:
        c.login("alice@example.test", "alice-secret-1")
    # The CLI sees the ban and lifts it without a restart.
    listed = server.cli("ban", "list").stdout
    assert listed.startswith("127.0.0.2 ") and "auth_failures" in listed
    server.cli("ban", "del", "127.0.0.2")
    server.wait_event("protect.unban", client="127.0.0.2")
    assert greeting(server.ports["smtp"], "127.0.0.2").startswith(b"220 ")


def test_allow_networks_are_never_banned(server):
    assert fail_auth(server.ports["submissions"], "127.0.0.9", 7) == [535] * 7
    assert greeting(server.ports["smtp"], "127.0.0.9").startswith(b"220 ")
    assert not server.log_events("protect.ban")


def test_manual_ban_survives_restart_and_escalates(tmp_path):
    s = Postern(tmp_path / "p", protect_toml=PROTECT).start()
    try:
        out = s.cli("ban", "add", "127.0.0.4", "--for", "2h").stdout
        assert "banned 127.0.0.4 for 2h" in out
        assert greeting(s.ports["smtp"], "127.0.0.4").startswith(b"421 4.7.0")
        bad = s.cli("ban", "add", "not-an-ip", check=False)
        assert bad.returncode == 1 and "not an address" in bad.stderr
    finally:
        assert s.stop() == 0
    assert "127.0.0.4 " in (tmp_path / "p" / "data" / "state" / "bans").read_text()
    # Without a server the command works on the file.
    assert "127.0.0.4" in s.cli("ban", "list").stdout
    s.start()
    try:
        s.wait_event("protect.bans_loaded")
        assert greeting(s.ports["smtp"], "127.0.0.4").startswith(b"421 4.7.0")
    finally:
        assert s.stop() == 0


def test_ipv6_counted_per_prefix_in_ban_keys(tmp_path):
    s = Postern(tmp_path / "p", protect_toml=PROTECT)
    out = s.cli("ban", "add", "2001:db8:1:2::7", "--for", "1h").stdout
    assert "banned 2001:db8:1:2::/64" in out
    assert "2001:db8:1:2::/64" in s.cli("ban", "list").stdout
    s.cli("ban", "del", "2001:db8:1:2:ffff::1")
    assert s.cli("ban", "list").stdout == ""


def test_concurrent_connection_limit_per_client(server):
    socks = [socket.create_connection(("127.0.0.1", server.ports["smtp"]), source_address=("127.0.0.5", 0))
             for _ in range(3)]
    for s in socks:
        assert s.recv(100).startswith(b"220")
    assert greeting(server.ports["smtp"], "127.0.0.5").startswith(b"421 4.7.0")
    assert greeting(server.ports["smtp"], "127.0.0.6").startswith(b"220")   # others unaffected
    socks[0].close()
    wait_until(lambda: greeting(server.ports["smtp"], "127.0.0.5").startswith(b"220"), timeout=10,
               what="a slot to free up")
    for s in socks[1:]:
        s.close()


def test_connection_rate_limit(tmp_path):
    protect = '[protect]\nallow_networks = []\nmax_connection_rate = 5'
    with Postern(tmp_path / "p", protect_toml=protect) as s:
        got = [greeting(s.ports["smtp"], "127.0.0.7")[:3] for _ in range(7)]
        assert got[:5] == [b"220"] * 5 and got[5:] == [b"421"] * 2, got
        s.wait_event("protect.connection_rate")


def test_loopback_is_exempt_by_default(tmp_path):
    """Local applications sending through localhost are not rate-limited or banned unless
    allow_networks is written (test_connection_rate_limit writes it empty)."""
    with Postern(tmp_path / "p", protect_toml='[protect]\nmax_connection_rate = 5') as s:
        got = [greeting(s.ports["smtp"], "127.0.0.7")[:3] for _ in range(10)]
        assert got == [b"220"] * 10, got
        assert "protect.allow_networks: 127.0.0.0/8, ::1/128" in s.cli("config", "show").stdout


def test_relay_attempts_ban(tmp_path):
    protect = '[protect]\nallow_networks = []\nrelay_attempts = 3'
    with Postern(tmp_path / "p", protect_toml=protect) as s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10, source_address=("127.0.0.8", 0)) as c:
            c.ehlo("relay")
            c.mail("spam@remote.test")
            assert c.rcpt("a@victim.test")[0] == 554
            assert c.rcpt("b@victim.test")[0] == 554
            code, msg = c.rcpt("c@victim.test")
            assert code == 554
            # the third strike bans: 421 follows and the connection closes
            assert c.noop()[0] == 421
        s.wait_event("protect.ban", client="127.0.0.8")


def test_damaged_bans_file_line_is_logged_and_skipped(tmp_path):
    """A garbage line in state/bans (hand edit, disk error) is named with FILE:LINE and
    skipped; the server starts and the valid ban around it still holds."""
    s = Postern(tmp_path / "p", protect_toml=PROTECT)
    state = s.data_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    until = int(time.time()) + 3600
    (state / "bans").write_text(f"127.0.0.4 {until} 0 manual\nthis is not a ban\n")
    s.start()
    try:
        ev = s.wait_event("protect.bans_file_bad_line")
        assert ev["file"].endswith("state/bans:2"), ev
        assert greeting(s.ports["smtp"], "127.0.0.4").startswith(b"421 4.7.0")
        assert greeting(s.ports["smtp"], "127.0.0.6").startswith(b"220")
    finally:
        assert s.stop() == 0
