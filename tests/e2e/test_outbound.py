"""Issue 12: outbound delivery. Mail for remote recipients goes to the MX hosts of their
domain (looked up in a DNS server on loopback) or to a relay from [[route]], over SMTP to
real servers on 127.0.0.x (Python aiosmtpd, tests/e2e/mx_server.py): connection reuse,
STARTTLS, per-recipient 4xx/5xx, retries after a deferral, RFC 3464 bounces naming the remote
reply, null MX and missing domains bounced at once, relay AUTH over STARTTLS and implicit
TLS, per-domain routes, and the delivered message's DKIM signature checked by an independent
verifier (python3-dkim)."""

import email
import re
import smtplib
import ssl
import time

import dkim
import pytest

from dns_server import DnsServer
from harness import Postern, free_port, make_cert, wait_until
from mx_server import MxServer

FAST = '[queue]\nretry_min = "1s"\nretry_max = "2s"\nremote_port = {port}\n'


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def submit(server, to, subject="outbound", mail_from="alice@example.test", body="hello out there\r\n"):
    """AUTH as alice on submission (STARTTLS) and send to `to` (a list or one address)."""
    rcpts = to if isinstance(to, list) else [to]
    msg = (f"From: Alice <{mail_from}>\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n\r\n{body}").encode()
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.starttls(context=tls_context())
        c.login("alice@example.test", "alice-secret-1")
        c.sendmail(mail_from, rcpts, msg)


def outbound(tmp_path, dns, port, extra=""):
    """A Postern that resolves through `dns` and delivers to MX hosts on `port`."""
    toml = FAST.format(port=port) + f'\n[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\n' + extra
    return Postern(tmp_path / "p", extra_toml=toml)


def bounce_in(server, address, timeout=15):
    files = server.wait_mail(address, timeout=timeout)
    return email.message_from_bytes(files[-1].read_bytes())


def report_fields(bounce):
    """The message/delivery-status part of an RFC 3464 report, as text."""
    for part in bounce.walk():
        if part.get_content_type() == "message/delivery-status":
            return "".join(p.as_string() if hasattr(p, "as_string") else str(p) for p in part.get_payload())
    raise AssertionError("no message/delivery-status part")


@pytest.fixture
def mx_port():
    return free_port("127.0.0.5")


def test_mx_delivery_over_starttls_with_connection_reuse(tmp_path, mx_port):
    cert, key = make_cert(tmp_path / "mxtls", cn="mx1.example.org", names=("mx1.example.org",))
    records = {"example.org": [("MX", "10 mx1.example.org")], "mx1.example.org": [("A", "127.0.0.5")]}
    with DnsServer(records) as dns, MxServer("127.0.0.5", mx_port, starttls=(cert, key)) as mx, \
            outbound(tmp_path, dns, mx_port) as s:
        for i in range(3):
            submit(s, "bob@example.org", subject=f"hello {i}")
        wait_until(lambda: len(mx.messages) == 3, timeout=15, what="3 messages at the MX")
        sent = wait_until(lambda: len(s.log_events("delivery.sent")) == 3 and s.log_events("delivery.sent"))
        for ev in sent:
            assert ev["to"] == "bob@example.org" and ev["status"] == "sent"
            assert ev["relay"] == f"mx1.example.org[127.0.0.5]:{mx_port}", ev
            assert ev["tls"].startswith("TLSv1."), ev
            assert ev["dsn"].startswith("2."), ev
            assert int(ev["delay"]) >= 0
        for m in mx.messages:
            assert m.mail_from == "alice@example.test" and m.rcpt_tos == ["bob@example.org"]
            assert m.tls, "the MX offered STARTTLS: the message must have gone over TLS"
            assert b"\r\nSubject: hello " in m.data, m.data[:300]
        # Three messages, one destination: the connection was reused.
        assert mx.connections < 3, f"{mx.connections} connections for 3 messages"
        wait_until(lambda: "bob@example.org" not in s.cli("queue", "list").stdout, what="an empty queue")


def test_kept_connection_closed_by_the_server_is_replaced_not_deferred(tmp_path, mx_port):
    records = {"example.org": [("MX", "10 mx1.example.org")], "mx1.example.org": [("A", "127.0.0.5")]}
    with DnsServer(records) as dns, MxServer("127.0.0.5", mx_port, idle_timeout=1) as mx, \
            outbound(tmp_path, dns, mx_port) as s:
        submit(s, "bob@example.org", subject="first")
        s.wait_event("delivery.sent", to="bob@example.org")
        time.sleep(2)   # the MX says 421 and closes the idle session Postern still keeps
        submit(s, "carol@example.org", subject="second")
        s.wait_event("delivery.sent", to="carol@example.org")
        assert s.wait_event("delivery.reuse_lost")["relay"].startswith("mx1.example.org[127.0.0.5]")
        assert not s.log_events("delivery.deferred")
        assert len(mx.messages) == 2 and mx.connections == 2


def test_our_own_name_in_the_mx_list_cuts_it_and_everything_after(tmp_path, mx_port):
    # RFC 5321 §5.1: mail.example.test (us) at 10 removes itself and the backup at 20.
    records = {"loop.example": [("MX", "10 mail.example.test"), ("MX", "20 backup.example")],
               "backup.example": [("A", "127.0.0.5")]}
    with DnsServer(records) as dns, MxServer("127.0.0.5", mx_port) as mx, outbound(tmp_path, dns, mx_port) as s:
        submit(s, "x@loop.example", subject="loop")
        b = bounce_in(s, "alice@example.test")
        assert "Status: 5.4.6" in report_fields(b)
        assert mx.connections == 0


def test_next_mx_when_the_first_is_down_and_implicit_mx(tmp_path, mx_port):
    records = {"example.org": [("MX", "10 dead.example.org"), ("MX", "20 mx2.example.org")],
               "dead.example.org": [("A", "127.0.0.6")],      # nothing listens there
               "mx2.example.org": [("A", "127.0.0.5")],
               "plain.example": [("A", "127.0.0.5")]}           # no MX: the domain itself (RFC 5321 §5.1)
    with DnsServer(records) as dns, MxServer("127.0.0.5", mx_port) as mx, outbound(tmp_path, dns, mx_port) as s:
        submit(s, "bob@example.org", subject="second mx")
        submit(s, "carol@plain.example", subject="implicit mx")
        wait_until(lambda: len(mx.messages) == 2, timeout=15, what="2 messages at the MX")
        ev = s.wait_event("delivery.sent", to="bob@example.org")
        assert ev["relay"] == f"mx2.example.org[127.0.0.5]:{mx_port}"
        assert ev["tls"] == "none"
        assert s.wait_event("delivery.connect_failed")["relay"].startswith("dead.example.org[127.0.0.6]")
        assert s.wait_event("delivery.sent", to="carol@plain.example")["relay"].startswith("plain.example[127.0.0.5]")


def test_per_recipient_replies_deferral_recovery_and_bounce(tmp_path, mx_port):
    records = {"example.org": [("MX", "10 mx1.example.org")], "mx1.example.org": [("A", "127.0.0.5")]}
    rules = {"later@example.org": (451, "4.3.0 mailbox busy, try later"),
             "nobody@example.org": (550, "5.1.1 no such user here")}
    with DnsServer(records) as dns, MxServer("127.0.0.5", mx_port, rules=rules) as mx, \
            outbound(tmp_path, dns, mx_port) as s:
        submit(s, ["bob@example.org", "later@example.org", "nobody@example.org"], subject="mixed")
        assert s.wait_event("delivery.sent", to="bob@example.org")
        d = s.wait_event("delivery.deferred", to="later@example.org")
        assert d["dsn"] == "4.3.0" and "451 4.3.0 mailbox busy" in d["reason"], d
        assert d["relay"].startswith("mx1.example.org[127.0.0.5]")
        # 5xx: one bounce to the (local) sender naming the recipient and the remote reply.
        b = bounce_in(s, "alice@example.test")
        assert b["From"].lower().startswith("mail delivery") or "MAILER-DAEMON" in b["From"]
        status = report_fields(b)
        assert "Final-Recipient: rfc822; nobody@example.org" in status, status
        assert "Action: failed" in status and "Status: 5.1.1" in status, status
        assert "550 5.1.1 no such user here" in status, status
        assert "later@example.org" not in status and "bob@example.org" not in status
        # The remote recovers: the next retry delivers.
        mx.set_rule("later@example.org", None)
        s.wait_event("delivery.sent", to="later@example.org", timeout=15)
        assert sorted(r for m in mx.messages for r in m.rcpt_tos) == ["bob@example.org", "later@example.org"]
        assert len(s.maildir("alice@example.test")) == 1, "exactly one bounce"


def test_null_mx_and_missing_domain_bounce_at_once(tmp_path, mx_port):
    records = {"nullmx.example": [("MX", "0 .")]}
    with DnsServer(records, nxdomain=["gone.example"]) as dns, outbound(tmp_path, dns, mx_port) as s:
        submit(s, "x@nullmx.example", subject="null mx")
        b = bounce_in(s, "alice@example.test")
        status = report_fields(b)
        assert "Final-Recipient: rfc822; x@nullmx.example" in status and "Status: 5.1.10" in status, status
        submit(s, "y@gone.example", subject="no domain")
        wait_until(lambda: len(s.maildir("alice@example.test")) == 2, timeout=15, what="second bounce")
        b2 = email.message_from_bytes(s.maildir("alice@example.test")[-1].read_bytes())
        assert "Status: 5.1.2" in report_fields(b2)
        # Neither waited for a retry.
        assert not [e for e in s.log_events("delivery.deferred") if e["to"] in ("x@nullmx.example", "y@gone.example")]


def test_dns_failure_defers(tmp_path, mx_port):
    with DnsServer({}, servfail=["broken.example"]) as dns, outbound(tmp_path, dns, mx_port) as s:
        submit(s, "z@broken.example", subject="servfail")
        ev = s.wait_event("delivery.deferred", to="z@broken.example")
        assert ev["dsn"] == "4.4.3" and "MX lookup" in ev["reason"], ev


def test_relay_with_auth_over_starttls_and_implicit_tls(tmp_path, mx_port):
    cert, key = make_cert(tmp_path / "relaytls", cn="relay.example.net", names=("relay.example.net",))
    records = {"relay.example.net": [("A", "127.0.0.7")]}
    (tmp_path / "relay-auth").write_text("sender-account:relay-pass-1\n")
    (tmp_path / "relay-auth").chmod(0o600)
    starttls_port, implicit_port = free_port("127.0.0.7"), free_port("127.0.0.7")
    routes = (f'[[route]]\nrecipient_domains = ["implicit.example"]\nrelay = "relay.example.net:{implicit_port}"\n'
              f'tls = "implicit"\nauth_file = "{tmp_path}/relay-auth"\nca_file = "{cert}"\n'
              f'[[route]]\nrelay = "relay.example.net:{starttls_port}"\ntls = "starttls"\n'
              f'auth_file = "{tmp_path}/relay-auth"\nca_file = "{cert}"\n')
    auth = {"sender-account": "relay-pass-1"}
    with DnsServer(records) as dns, \
            MxServer("127.0.0.7", starttls_port, starttls=(cert, key), users=auth) as st, \
            MxServer("127.0.0.7", implicit_port, implicit_tls=(cert, key), users=auth) as it, \
            outbound(tmp_path, dns, mx_port, extra=routes) as s:
        submit(s, "someone@anywhere.example", subject="via starttls relay")
        submit(s, "someone@implicit.example", subject="via implicit relay")
        wait_until(lambda: len(st.messages) == 1 and len(it.messages) == 1, timeout=15, what="one message at each relay")
        assert st.messages[0].auth_user == "sender-account" and st.messages[0].tls
        assert it.messages[0].auth_user == "sender-account" and it.messages[0].tls
        assert s.wait_event("delivery.sent", to="someone@anywhere.example")["relay"] == \
            f"relay.example.net[127.0.0.7]:{starttls_port}"


def test_relay_with_wrong_password_defers(tmp_path, mx_port):
    cert, key = make_cert(tmp_path / "relaytls", cn="relay.example.net", names=("relay.example.net",))
    (tmp_path / "relay-auth").write_text("sender-account:wrong\n")
    port = free_port("127.0.0.7")
    routes = (f'[[route]]\nrelay = "relay.example.net:{port}"\nauth_file = "{tmp_path}/relay-auth"\n'
              f'ca_file = "{cert}"\n')
    with DnsServer({"relay.example.net": [("A", "127.0.0.7")]}) as dns, \
            MxServer("127.0.0.7", port, starttls=(cert, key), users={"sender-account": "right"}) as relay, \
            outbound(tmp_path, dns, mx_port, extra=routes) as s:
        submit(s, "someone@anywhere.example", subject="bad password")
        ev = s.wait_event("delivery.deferred", to="someone@anywhere.example")
        assert "535" in ev["reason"] or "auth" in ev["reason"].lower(), ev
        assert not relay.messages


def test_relay_certificate_must_verify(tmp_path, mx_port):
    cert, key = make_cert(tmp_path / "relaytls", cn="relay.example.net", names=("relay.example.net",))
    port = free_port("127.0.0.7")
    routes = f'[[route]]\nrelay = "relay.example.net:{port}"\ntls = "starttls"\n'   # no ca_file: self-signed fails
    with DnsServer({"relay.example.net": [("A", "127.0.0.7")]}) as dns, \
            MxServer("127.0.0.7", port, starttls=(cert, key)) as relay, \
            outbound(tmp_path, dns, mx_port, extra=routes) as s:
        submit(s, "someone@anywhere.example", subject="unverified")
        ev = s.wait_event("delivery.deferred", to="someone@anywhere.example")
        assert "certificate" in ev["reason"].lower() or "verify" in ev["reason"].lower(), ev
        assert not relay.messages


def test_deferred_remote_mail_survives_a_restart(tmp_path, mx_port):
    records = {"example.org": [("MX", "10 mx1.example.org")], "mx1.example.org": [("A", "127.0.0.5")]}
    with DnsServer(records) as dns:
        s = outbound(tmp_path, dns, mx_port)
        with s:
            submit(s, "bob@example.org", subject="across restart")   # no MX running yet
            s.wait_event("delivery.deferred", to="bob@example.org")
        with MxServer("127.0.0.5", mx_port) as mx:
            s.start()
            try:
                wait_until(lambda: len(mx.messages) == 1, timeout=15, what="delivery after the restart")
            finally:
                s.stop()


def test_dkim_signature_verifies_at_the_destination(tmp_path, mx_port):
    records = {"example.org": [("MX", "10 mx1.example.org")], "mx1.example.org": [("A", "127.0.0.5")]}
    with DnsServer(records) as dns, MxServer("127.0.0.5", mx_port) as mx:
        s = outbound(tmp_path, dns, mx_port, extra=f'[dkim]\nkeys = "{tmp_path}/dkim"\n')
        out = s.cli("dkim", "keygen", "example.test").stdout
        name = re.search(r"^(\S+\._domainkey\.\S+\.) IN TXT", out, re.M).group(1)
        value = "".join(re.findall(r'"([^"]*)"', out.split(" IN TXT", 1)[1]))
        with s:
            submit(s, "bob@example.org", subject="signed and sent")
            wait_until(lambda: len(mx.messages) == 1, timeout=15, what="the message at the MX")
        data = mx.messages[0].data

        def lookup(qname, timeout=5):
            q = qname.decode() if isinstance(qname, bytes) else qname
            return value.encode() if q == name else None
        assert dkim.verify(data, dnsfunc=lookup), data[:600]


def test_kill_9_while_sending_loses_nothing(tmp_path, mx_port):
    """The remote has the message but its 250 never reaches us (we die first): after the
    restart the recipient is still pending and is sent again. The copy the remote already
    had is the duplicate RFC 5321 §6.1 accepts; a loss would be the failure."""
    records = {"example.org": [("MX", "10 mx1.example.org")], "mx1.example.org": [("A", "127.0.0.5")]}
    with DnsServer(records) as dns, MxServer("127.0.0.5", mx_port) as mx:
        mx.data_delay = 30
        s = outbound(tmp_path, dns, mx_port)
        s.start()
        try:
            submit(s, "bob@example.org", subject="in flight")
            wait_until(lambda: len(mx.messages) == 1, timeout=15, what="the message at the MX, its 250 held back")
            s.kill9()
            assert "bob@example.org" in s.cli("queue", "list").stdout   # still pending in the spool
            mx.data_delay = 0
            s.start()
            s.wait_event("delivery.sent", to="bob@example.org", timeout=20)
        finally:
            s.stop()
        assert len(mx.messages) == 2
        assert mx.messages[0].data == mx.messages[1].data
        assert "bob@example.org" not in s.cli("queue", "list").stdout
