"""SRS ([srs], src/delivery/srs.h): mail that an alias forwards off-site leaves with an SRS0
(or SRS1) envelope sender in the server's domain, so it keeps passing SPF at the destination;
a bounce to that address is accepted from anyone and relayed to the original sender.
Real components only: the postern binary, a DNS server and MX servers (aiosmtpd) on
127.0.0.x. The expected hashes are computed here independently (HMAC-SHA1 with the secret
file that Postern made), which also gives an expired address to refuse."""

import base64
import hashlib
import hmac
import re
import smtplib
import ssl
import time

import pytest

from dns_server import DnsServer
from harness import HOSTNAME, Postern, free_port, wait_until
from mx_server import MxServer

FAST = '[queue]\nretry_min = "1s"\nretry_max = "2s"\nremote_port = {port}\n'
ALIASES = ("postmaster@example.test alice@example.test\n"
           "fwd@example.test friend@example.org\n")
ORG_MX = "127.0.0.5"       # example.org
SENDER_MX = "127.0.0.7"    # sender.example and fwd1.example
RECORDS = {"example.org": [("MX", "10 mx1.example.org")], "mx1.example.org": [("A", ORG_MX)],
           "sender.example": [("MX", "10 mx.sender.example")], "mx.sender.example": [("A", SENDER_MX)],
           "fwd1.example": [("MX", "10 mx.fwd1.example")], "mx.fwd1.example": [("A", SENDER_MX)]}
BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
SRS0 = re.compile(r"^SRS0=([A-Za-z0-9+/]{4})=([A-Z2-7]{2})=sender\.example=someone@" + re.escape(HOSTNAME) + "$")


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def message(mail_from, rcpts, subject):
    return (f"From: <{mail_from or 'MAILER-DAEMON@sender.example'}>\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@srs.test>\r\n\r\nbody\r\n").encode()


def send_inbound(server, mail_from, rcpts, subject):
    """Port 25, no AUTH: how mail (and bounces) arrive from the internet."""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.sendmail(mail_from, rcpts, message(mail_from, rcpts, subject))


def rcpt_reply(server, rcpt, mail_from=""):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("bounces.sender.example")
        c.mail(mail_from)
        return c.rcpt(rcpt)


def srs_hash(secret, *parts):
    data = "".join(parts).lower().encode()
    return base64.b64encode(hmac.new(secret, data, hashlib.sha1).digest()).decode()[:4]


def stamp(days_ago=0):
    t = (int(time.time()) // 86400 - days_ago) % 1024
    return BASE32[t >> 5] + BASE32[t & 31]


@pytest.fixture
def mx_port():
    # One remote_port for every destination: both MX servers listen on it, on their own address.
    for _ in range(20):
        port = free_port(ORG_MX)
        try:
            with MxServer(SENDER_MX, port):
                return port
        except OSError:
            continue
    raise AssertionError("no port free on both MX addresses")


def postern(tmp_path, dns, port, srs=True):
    toml = FAST.format(port=port) + f'\n[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\n'
    if srs:
        toml += "\n[srs]\nenabled = true\n"
    return Postern(tmp_path / "p", extra_toml=toml, aliases=ALIASES)


def test_forward_rewritten_bounce_returns_forgeries_refused(tmp_path, mx_port):
    with DnsServer(RECORDS) as dns, MxServer(ORG_MX, mx_port) as org, MxServer(SENDER_MX, mx_port) as snd, \
            postern(tmp_path, dns, mx_port) as s:
        secret_file = s.data_dir / "state" / "srs-secret"
        assert secret_file.stat().st_mode & 0o777 == 0o600
        secret = secret_file.read_bytes()
        assert len(secret) == 32

        send_inbound(s, "someone@sender.example", ["fwd@example.test"], "forwarded")
        wait_until(lambda: len(org.messages) == 1, timeout=15, what="the forwarded message at example.org's MX")
        m = org.messages[0]
        assert m.rcpt_tos == ["friend@example.org"]
        got = SRS0.match(m.mail_from)
        assert got, m.mail_from
        assert got.group(2) == stamp()
        assert got.group(1) == srs_hash(secret, stamp(), "sender.example", "someone"), "hash made independently"
        ev = s.wait_event("srs.rewritten")
        assert ev["from"] == "someone@sender.example" and ev["srs_from"] == m.mail_from, ev
        srs_address = m.mail_from

        # The bounce (null sender, no AUTH) comes back to the original sender; case changes
        # on the way (a relay lowercasing the address) do not matter.
        send_inbound(s, "", [srs_address], "bounce one")
        send_inbound(s, "", [srs_address.lower()], "bounce two")
        wait_until(lambda: len(snd.messages) == 2, timeout=15, what="two bounces at sender.example's MX")
        for b in snd.messages:
            assert b.mail_from == "" and b.rcpt_tos == ["someone@sender.example"], (b.mail_from, b.rcpt_tos)
        assert s.wait_event("srs.reversed")["original"] == "someone@sender.example"

        # Forged, expired, malformed: 550 5.1.1 saying which.
        local, _, domain = srs_address.partition("@")
        flipped = "B" if local[5].upper() == "A" else "A"   # differs in more than case
        tampered = local[:5] + flipped + local[6:] + "@" + domain
        code, text = rcpt_reply(s, tampered)
        assert code == 550 and text.startswith(b"5.1.1") and b"does not match" in text, (code, text)
        old = stamp(30)
        expired = f"SRS0={srs_hash(secret, old, 'sender.example', 'someone')}={old}=sender.example=someone@{HOSTNAME}"
        code, text = rcpt_reply(s, expired)
        assert code == 550 and text.startswith(b"5.1.1") and b"expired" in text, (code, text)
        code, text = rcpt_reply(s, f"SRS0=abcd=AB=sender.example@{HOSTNAME}")
        assert code == 550 and text.startswith(b"5.1.1") and b"local part" in text, (code, text)
        for counter in ("smtp.srs_bad_hash", "smtp.srs_expired", "smtp.srs_malformed"):
            assert s.wait_event("smtp.rejected", counter=counter)
        assert len(snd.messages) == 2


def test_srs1_for_another_forwarders_srs0(tmp_path, mx_port):
    first = "SRS0=abcd=AB=orig.example=joe@fwd1.example"
    with DnsServer(RECORDS) as dns, MxServer(ORG_MX, mx_port) as org, MxServer(SENDER_MX, mx_port) as snd, \
            postern(tmp_path, dns, mx_port) as s:
        secret = (s.data_dir / "state" / "srs-secret").read_bytes()
        send_inbound(s, first, ["fwd@example.test"], "second hop")
        wait_until(lambda: len(org.messages) == 1, timeout=15, what="the forwarded message")
        rest = "=abcd=AB=orig.example=joe"
        assert org.messages[0].mail_from == f"SRS1={srs_hash(secret, 'fwd1.example', rest)}=fwd1.example={rest}@{HOSTNAME}"
        # Its bounce goes back to the first forwarder, which reverses its own SRS0.
        send_inbound(s, "", [org.messages[0].mail_from], "bounce to srs1")
        wait_until(lambda: len(snd.messages) == 1, timeout=15, what="the bounce at fwd1.example's MX")
        assert snd.messages[0].rcpt_tos == [first] and snd.messages[0].mail_from == ""


def test_local_sender_and_direct_recipients_keep_the_sender(tmp_path, mx_port):
    """An authenticated user's sender is always in a local domain: never rewritten, neither
    for a direct remote recipient nor for one reached through an alias."""
    with DnsServer(RECORDS) as dns, MxServer(ORG_MX, mx_port) as org, postern(tmp_path, dns, mx_port) as s:
        rcpts = ["fwd@example.test", "carol@example.org"]
        with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=10) as c:
            c.starttls(context=tls_context())
            c.login("alice@example.test", "alice-secret-1")
            c.sendmail("alice@example.test", rcpts, message("alice@example.test", rcpts, "from alice"))
        wait_until(lambda: sum(len(m.rcpt_tos) for m in org.messages) == 2, timeout=15, what="both recipients")
        for m in org.messages:
            assert m.mail_from == "alice@example.test", m.mail_from
        assert sorted(r for m in org.messages for r in m.rcpt_tos) == ["carol@example.org", "friend@example.org"]
        assert not s.log_events("srs.rewritten")


def test_excluded_sender_domain_is_not_rewritten(tmp_path, mx_port):
    with DnsServer(RECORDS) as dns, MxServer(ORG_MX, mx_port) as org:
        toml = (FAST.format(port=mx_port) + f'\n[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\n'
                '\n[srs]\nenabled = true\nexclude_domains = ["sender.example"]\n')
        with Postern(tmp_path / "p", extra_toml=toml, aliases=ALIASES) as s:
            send_inbound(s, "someone@sender.example", ["fwd@example.test"], "excluded")
            wait_until(lambda: len(org.messages) == 1, timeout=15, what="the forwarded message")
            assert org.messages[0].mail_from == "someone@sender.example"


def test_disabled_means_no_rewriting(tmp_path, mx_port):
    with DnsServer(RECORDS) as dns, MxServer(ORG_MX, mx_port) as org, \
            postern(tmp_path, dns, mx_port, srs=False) as s:
        send_inbound(s, "someone@sender.example", ["fwd@example.test"], "no srs")
        wait_until(lambda: len(org.messages) == 1, timeout=15, what="the forwarded message")
        assert org.messages[0].mail_from == "someone@sender.example"
        assert not (s.data_dir / "state" / "srs-secret").exists()
        # Without [srs] an SRS-looking address is nobody's: not accepted.
        code, _ = rcpt_reply(s, f"SRS0=abcd=AB=sender.example=someone@{HOSTNAME}")
        assert code >= 500
        assert "srs.enabled: false" in s.cli("config", "show").stdout
