"""Issue 15 item 6: greylisting on the real client address. Clients come from other loopback
addresses (127.0.0.2, 127.0.0.3); 127.0.0.1 is in [protect] allow_networks (harness default).
The delays are real (a short configured delay); there is nothing else to wait for."""

import smtplib
import socket
import ssl
import time

import pytest

from harness import DEFAULT_PROTECT, Postern

DELAY = 2


def greylist_toml(extra=""):
    return f'{DEFAULT_PROTECT}\n\n[protect.greylist]\nenabled = true\ndelay = "{DELAY}s"\n{extra}'


def tls_context():
    c = ssl.create_default_context()
    c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
    return c


def attempt(server, source, sender="sender@remote.test", rcpt="bob@example.test", login=None):
    """One delivery attempt on the smtp listener; the RCPT reply as (code, text) and, when
    accepted, the DATA reply code."""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10, source_address=(source, 0)) as c:
        c.ehlo("client.remote.test")
        if login:
            c.starttls(context=tls_context())
            c.ehlo("client.remote.test")
            c.login(*login)
        code, _ = c.mail(sender)
        assert code == 250
        code, text = c.rcpt(rcpt)
        if code != 250:
            return code, text.decode(), None
        data_code, _ = c.data(b"Subject: greylist test\r\n\r\nhello\r\n")
        return code, text.decode(), data_code


def wait_delay(since):
    # The delay is counted in whole seconds on the server: wait it out, plus one second.
    time.sleep(max(0.0, since + DELAY + 1 - time.monotonic()))


@pytest.fixture
def server(tmp_path):
    with Postern(tmp_path / "p", protect_toml=greylist_toml()) as s:
        yield s


def test_first_attempt_deferred_then_too_early_then_passes(server):
    first = time.monotonic()
    code, text, _ = attempt(server, "127.0.0.2")
    assert code == 451 and text.startswith("4.7.1 ") and "Greylisted" in text, text
    ev = server.wait_event("greylist.deferred", to="bob@example.test")
    assert ev["client"].startswith("127.0.0.2:") and ev["from"] == "sender@remote.test"
    assert ev["network"] == "127.0.0.0/24" and "retry_in" in ev
    code, text, _ = attempt(server, "127.0.0.2")   # too early
    assert code == 451 and "4.7.1" in text
    wait_delay(first)
    code, _, data_code = attempt(server, "127.0.0.2")
    assert (code, data_code) == (250, 250)
    server.wait_mail("bob@example.test")
    ev = server.wait_event("greylist.passed", to="bob@example.test")
    assert ev["from"] == "sender@remote.test" and ev["delay"].endswith("s")
    # The same /24 shares the pass; another sender or recipient does not.
    assert attempt(server, "127.0.0.3")[0] == 250
    assert attempt(server, "127.0.0.3", sender="other@remote.test")[0] == 451
    assert attempt(server, "127.0.0.3", rcpt="alice@example.test")[0] == 451


def test_unknown_recipient_is_refused_before_greylisting(server):
    code, text, _ = attempt(server, "127.0.0.2", rcpt="nobody@example.test")
    assert code == 550 and "5.1.1" in text
    assert not server.log_events("greylist.deferred")


def test_authenticated_and_allow_listed_clients_are_not_greylisted(server):
    code, _, data_code = attempt(server, "127.0.0.2", sender="alice@example.test",
                                 login=("alice@example.test", "alice-secret-1"))
    assert (code, data_code) == (250, 250)
    code, _, data_code = attempt(server, "127.0.0.1")   # in allow_networks
    assert (code, data_code) == (250, 250)
    server.wait_mail("bob@example.test", count=2)
    assert not server.log_events("greylist.deferred")


def test_ipv4_prefix_32_keeps_addresses_apart(tmp_path):
    with Postern(tmp_path / "p", protect_toml=greylist_toml("ipv4_prefix = 32")) as s:
        first = time.monotonic()
        assert attempt(s, "127.0.0.2")[0] == 451
        ev = s.wait_event("greylist.deferred")
        assert ev["network"] == "127.0.0.2/32"
        wait_delay(first)
        assert attempt(s, "127.0.0.3")[0] == 451   # first seen from this address
        assert attempt(s, "127.0.0.2")[0] == 250


class BehindProxy(smtplib.SMTP):
    """An SMTP client whose connection opens with a PROXY v1 header, as HAProxy's would."""

    def __init__(self, client, client_port, *args, **kwargs):
        family = "TCP6" if ":" in client else "TCP4"
        local = "::1" if family == "TCP6" else "127.0.0.1"
        self._header = f"PROXY {family} {client} {local} {client_port} 25\r\n".encode()
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        sock = socket.create_connection((host, port), timeout)
        sock.sendall(self._header)
        return sock


def proxied_rcpt(server, client, client_port=40000):
    with BehindProxy(client, client_port, "127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("client.remote.test")
        assert c.mail("sender@remote.test")[0] == 250
        code, text = c.rcpt("bob@example.test")
        if code == 250:
            assert c.data(b"Subject: via proxy\r\n\r\nhello\r\n")[0] == 250
        return code, text.decode()


def test_behind_a_proxy_the_real_client_is_greylisted_and_ipv6_grouped_per_64(tmp_path):
    # The proxy (127.0.0.1) is exempt; the clients named in its headers are not.
    with Postern(tmp_path / "p", listeners=[("smtp", "required")], protect_toml=greylist_toml(),
                 proxy_toml='[proxy_protocol]\ntrusted_networks = ["127.0.0.1/32"]') as s:
        first = time.monotonic()
        code, text = proxied_rcpt(s, "2001:db8:1:2::5")
        assert code == 451 and "Greylisted" in text
        ev = s.wait_event("greylist.deferred")
        assert ev["network"] == "2001:db8:1:2::/64" and ev["client"] == "[2001:db8:1:2::5]:40000"
        assert ev["via"].startswith("127.0.0.1:")
        assert proxied_rcpt(s, "203.0.113.5")[0] == 451
        wait_delay(first)
        assert proxied_rcpt(s, "2001:db8:1:2:ffff::7")[0] == 250   # same /64
        assert proxied_rcpt(s, "2001:db8:1:3::5")[0] == 451        # another /64
        assert proxied_rcpt(s, "203.0.113.77")[0] == 250           # same /24 as 203.0.113.5
        s.wait_mail("bob@example.test", count=2)


def test_state_survives_a_restart(tmp_path):
    s = Postern(tmp_path / "p", protect_toml=greylist_toml())
    s.start()
    try:
        first = time.monotonic()
        assert attempt(s, "127.0.0.2")[0] == 451
        assert attempt(s, "127.0.0.2", sender="waiting@remote.test")[0] == 451
        wait_delay(first)
        assert attempt(s, "127.0.0.2")[0] == 250
    finally:
        assert s.stop() == 0
    state = (s.data_dir / "state" / "greylist").read_text()
    assert " pass sender@remote.test bob@example.test\n" in state
    assert " wait waiting@remote.test bob@example.test\n" in state
    assert (s.data_dir / "state" / "greylist").stat().st_mode & 0o777 == 0o600
    with s:
        s.wait_event("greylist.loaded", entries="2")
        assert attempt(s, "127.0.0.3")[0] == 250                                # passed before the restart
        assert attempt(s, "127.0.0.2", sender="waiting@remote.test")[0] == 250  # its first attempt counts


def test_disabled_by_default(tmp_path):
    with Postern(tmp_path / "p") as s:
        code, _, data_code = attempt(s, "127.0.0.2")
        assert (code, data_code) == (250, 250)
        assert not s.log_events("greylist.deferred")
        assert "protect.greylist: off" in s.cli("config", "show").stdout


def test_unknown_key_is_an_error(tmp_path):
    s = Postern(tmp_path / "p", protect_toml=greylist_toml())
    s.protect_toml = greylist_toml('dealy = "1m"')
    s._write_config()
    r = s.cli("config", "check", check=False)
    assert r.returncode == 1
    assert "unknown setting 'dealy' in [protect.greylist]" in r.stderr and "did you mean 'delay'" in r.stderr
