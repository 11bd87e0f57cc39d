"""Issue 5 item 3: DNSBL (RFC 5782) on the real client address, against a loopback DNS server
(dnsbl_server.py, python3-dnslib). Clients connect from 127.0.0.1, so the name looked up in a
zone is 1.0.0.127.<zone>; a second client from 127.0.0.2 (2.0.0.127.<zone>) shows the verdict
is per address. Postern caches nothing, so changing the answer table between connections
changes the next verdict."""

import smtplib
import ssl
import time

import pytest

from dnsbl_server import DnsblServer
from harness import Postern

ZONE = "zen.example"
TIMEOUT_S = 1
# 127.0.0.1 is in the harness's default allow list; allowed clients may skip DNSBL, so these
# tests allow another address instead.
PROTECT = '[protect]\nallow_networks = ["127.0.0.9/32"]\nmax_connection_rate = 1000'
MESSAGE = b"From: <sender@remote.test>\r\nTo: <alice@example.test>\r\nSubject: dnsbl\r\n\r\nhello\r\n"


def dnsbl_toml(resolver):
    return (f'[protect.dnsbl]\nresolver = "{resolver}"\ntimeout = "{TIMEOUT_S}s"\n\n'
            f'[[protect.dnsbl.zone]]\nname = "{ZONE}"\naction = "reject"\n'
            'codes = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]\n')


def qname(source):
    return ".".join(reversed(source.split("."))) + "." + ZONE


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def send(port, source="127.0.0.1"):
    """One inbound transaction to alice; returns (code, text) of the first rejection, or
    (250, "") when the message was accepted. The check may answer at the greeting or at a
    later command: either is fine as long as the reply is the documented one."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
            c.ehlo("client.remote.test")
            c.sendmail("sender@remote.test", ["alice@example.test"], MESSAGE)
        return 250, ""
    except smtplib.SMTPRecipientsRefused as e:
        code, text = next(iter(e.recipients.values()))
        return code, text.decode()
    except smtplib.SMTPResponseException as e:   # greeting, MAIL, DATA
        return e.smtp_code, e.smtp_error.decode()


def blocked(source):
    return 554, f"5.7.1 Service unavailable; client [{source}] blocked using {ZONE}"


@pytest.fixture
def dns():
    with DnsblServer() as d:
        yield d


@pytest.fixture
def server(tmp_path, dns):
    with Postern(tmp_path / "p", protect_toml=PROTECT, extra_toml=dnsbl_toml(dns.address)) as s:
        yield s


def test_listed_client_is_rejected_naming_the_zone(server, dns):
    dns.answers[qname("127.0.0.1")] = ["127.0.0.2"]
    assert send(server.ports["smtp"]) == blocked("127.0.0.1")
    assert dns.count(qname("127.0.0.1")) >= 1
    assert not server.maildir("alice@example.test")
    # Another client through the same listener, not listed, is accepted meanwhile.
    assert send(server.ports["smtp"], "127.0.0.2") == (250, "")
    server.wait_mail("alice@example.test", 1)


def test_unlisted_client_is_accepted_and_answers_are_not_cached(server, dns):
    assert send(server.ports["smtp"]) == (250, "")            # NXDOMAIN
    dns.answers[qname("127.0.0.1")] = ["127.0.0.10"]          # a code the zone does not count (PBL-like)
    assert send(server.ports["smtp"]) == (250, "")
    dns.answers[qname("127.0.0.1")] = ["127.0.0.4"]           # listed from now on
    assert send(server.ports["smtp"]) == blocked("127.0.0.1")
    del dns.answers[qname("127.0.0.1")]                       # delisted
    assert send(server.ports["smtp"]) == (250, "")
    server.wait_mail("alice@example.test", 3)
    assert not server.log_events("dnsbl.failed_open")


def test_resolver_refused_code_is_ignored(server, dns):
    dns.answers[qname("127.0.0.1")] = ["127.255.255.254"]   # e.g. Spamhaus via a public resolver
    assert send(server.ports["smtp"]) == (250, "")
    server.wait_event("dnsbl.resolver_refused", zone=ZONE)


def test_timing_out_resolver_fails_open(server, dns):
    dns.answers[qname("127.0.0.1")] = ["127.0.0.2"]
    dns.ignore.add("*")                                     # the resolver never answers
    start = time.monotonic()
    assert send(server.ports["smtp"]) == (250, "")
    assert time.monotonic() - start < TIMEOUT_S + 5
    server.wait_mail("alice@example.test", 1)
    ev = server.wait_event("dnsbl.failed_open", zone=ZONE, client="127.0.0.1")
    assert ev["reason"] == "timeout"
    assert dns.count(qname("127.0.0.1")) >= 1


def test_servfail_fails_open(server, dns):
    dns.answers[qname("127.0.0.1")] = ["127.0.0.2"]
    dns.servfail.add("*." + ZONE)
    assert send(server.ports["smtp"]) == (250, "")
    assert server.wait_event("dnsbl.failed_open", zone=ZONE, client="127.0.0.1")["reason"] == "servfail"


def test_authenticated_submission_is_exempt(server, dns):
    dns.answers[qname("127.0.0.1")] = ["127.0.0.2"]
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.ehlo("client.remote.test")
        c.starttls(context=tls_context())
        c.ehlo("client.remote.test")
        c.login("alice@example.test", "alice-secret-1")
        c.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
    server.wait_mail("bob@example.test", 1)
