"""Issue 5 item 3, issue 15: DNSBL (RFC 5782) on the real client address, through the shared DNS
layer, against the loopback DNS server (dns_server.py, python3-dnslib). Clients connect from
127.0.0.1, so the name looked up in a zone is 1.0.0.127.<zone>; a second client from 127.0.0.2
(2.0.0.127.<zone>) shows the verdict is per address.

The lookups are cached by the resolver for the answers' TTLs (negative answers for the SOA's
negative TTL). The `dns` fixture serves TTL 0 and no SOA, so nothing is cached and changing
the records between connections changes the next verdict; test_answers_are_cached_for_their_ttl
covers the cache."""

import smtplib
import ssl
import time

import pytest

from dns_server import DnsServer
from harness import Postern

ZONE = "zen.example"
TIMEOUT_S = 1
# 127.0.0.1 is in the harness's default allow list; allowed clients may skip DNSBL, so these
# tests allow another address instead.
PROTECT = '[protect]\nallow_networks = ["127.0.0.9/32"]\nmax_connection_rate = 1000'
MESSAGE = b"From: <sender@remote.test>\r\nTo: <alice@example.test>\r\nSubject: dnsbl\r\n\r\nhello\r\n"


def dnsbl_toml(resolver=None):
    """[protect.dnsbl] with one reject zone; with `resolver`, DNSBL asks that server (a resolver
    of its own), else the shared one of [dns]."""
    own = f'resolver = "{resolver}"\n' if resolver else ""
    return (f'[protect.dnsbl]\n{own}timeout = "{TIMEOUT_S}s"\n\n'
            f'[[protect.dnsbl.zone]]\nname = "{ZONE}"\naction = "reject"\n'
            'codes = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]\n')


def qname(source):
    return ".".join(reversed(source.split("."))) + "." + ZONE


def listed(dns, source, *codes, ttl=None):
    dns.records[qname(source)] = [("A", c) if ttl is None else ("A", c, ttl) for c in codes]


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx


def send(port, source="127.0.0.1", starttls=False, login=None):
    """One transaction to alice; returns (code, text) of the first rejection, or (250, "") when
    the message was accepted. The check may answer at the greeting or at a later command:
    either is fine as long as the reply is the documented one. `login`: (user, password),
    after STARTTLS; the message then comes from that user."""
    sender = login[0] if login else "sender@remote.test"
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
            c.ehlo("client.remote.test")
            if starttls or login:
                c.starttls(context=tls_context())
                c.ehlo("client.remote.test")
            if login:
                c.login(*login)
            c.sendmail(sender, ["alice@example.test"], MESSAGE)
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
    with DnsServer(ttl=0, negative_ttl=None) as d:
        yield d


@pytest.fixture
def server(tmp_path, dns):
    with Postern(tmp_path / "p", protect_toml=PROTECT, extra_toml=dnsbl_toml(dns.address)) as s:
        yield s


def test_listed_client_is_rejected_naming_the_zone(server, dns):
    listed(dns, "127.0.0.1", "127.0.0.2")
    assert send(server.ports["smtp"]) == blocked("127.0.0.1")
    assert dns.count(qname("127.0.0.1"), "A") >= 1
    assert not server.maildir("alice@example.test")
    # Another client through the same listener, not listed, is accepted meanwhile.
    assert send(server.ports["smtp"], "127.0.0.2") == (250, "")
    server.wait_mail("alice@example.test", 1)


def test_unlisted_client_is_accepted_and_changes_apply(server, dns):
    # From 127.0.0.3: the harness's readiness probe (from 127.0.0.1) may add a query of its own.
    src = "127.0.0.3"
    port = server.ports["smtp"]
    assert send(port, src) == (250, "")              # NXDOMAIN
    listed(dns, src, "127.0.0.10")                   # a code the zone does not count (PBL-like)
    assert send(port, src) == (250, "")
    listed(dns, src, "127.0.0.4")                    # listed from now on
    assert send(port, src) == blocked(src)
    del dns.records[qname(src)]                      # delisted
    assert send(port, src) == (250, "")
    server.wait_mail("alice@example.test", 3)
    assert not server.log_events("dnsbl.failed_open")
    assert dns.count(qname(src), "A") == 4           # TTL 0, no SOA: never cached


def test_answers_are_cached_for_their_ttl(server, dns):
    port = server.ports["smtp"]
    listed(dns, "127.0.0.3", "127.0.0.2", ttl=300)
    assert send(port, "127.0.0.3") == blocked("127.0.0.3")
    del dns.records[qname("127.0.0.3")]              # delisted, but the answer is cached
    assert send(port, "127.0.0.3") == blocked("127.0.0.3")
    assert dns.count(qname("127.0.0.3"), "A") == 1
    # A negative answer with an SOA is cached for its negative TTL (RFC 2308).
    dns.negative_ttl = 300
    assert send(port, "127.0.0.2") == (250, "")
    listed(dns, "127.0.0.2", "127.0.0.2")
    assert send(port, "127.0.0.2") == (250, "")
    assert dns.count(qname("127.0.0.2"), "A") == 1


def test_resolver_refused_code_is_ignored(server, dns):
    listed(dns, "127.0.0.1", "127.255.255.254")               # e.g. Spamhaus via a public resolver
    assert send(server.ports["smtp"]) == (250, "")
    server.wait_event("dnsbl.resolver_refused", zone=ZONE)


def test_timing_out_resolver_fails_open(server, dns):
    listed(dns, "127.0.0.1", "127.0.0.2")
    dns.ignore.add("*")                                     # the resolver never answers
    start = time.monotonic()
    assert send(server.ports["smtp"]) == (250, "")
    assert time.monotonic() - start < TIMEOUT_S + 5
    server.wait_mail("alice@example.test", 1)
    ev = server.wait_event("dnsbl.failed_open", zone=ZONE, client="127.0.0.1")
    assert ev["reason"] == "timeout"
    assert dns.count(qname("127.0.0.1"), "A") >= 1


def test_servfail_fails_open(server, dns):
    listed(dns, "127.0.0.1", "127.0.0.2")
    dns.servfail.add("*." + ZONE)
    assert send(server.ports["smtp"]) == (250, "")
    assert server.wait_event("dnsbl.failed_open", zone=ZONE, client="127.0.0.1")["reason"] == "servfail"


def test_authenticated_sender_on_the_smtp_listener_is_exempt(server, dns):
    """The smtp listener is where DNSBL is checked (submission never is), and it offers AUTH
    after STARTTLS: from the same listed address, the same STARTTLS session is refused without
    AUTH and accepted with it."""
    listed(dns, "127.0.0.1", "127.0.0.2")
    assert send(server.ports["smtp"], starttls=True) == blocked("127.0.0.1")
    assert send(server.ports["smtp"], login=("bob@example.test", "bob-secret-2")) == (250, "")
    server.wait_mail("alice@example.test", 1)
    assert len(server.log_events("dnsbl.rejected")) == 1


def test_shared_resolver_when_no_resolver_is_set(tmp_path, dns):
    """Without [protect.dnsbl] resolver the lookups go to [dns] servers. The check still ends
    at its own timeout when the shared resolver's is longer."""
    shared = f'[dns]\nservers = ["{dns.address}"]\ntimeout = "20s"\n\n'
    with Postern(tmp_path / "p", protect_toml=PROTECT, extra_toml=shared + dnsbl_toml()) as s:
        listed(dns, "127.0.0.1", "127.0.0.2")
        assert send(s.ports["smtp"]) == blocked("127.0.0.1")
        assert dns.count(qname("127.0.0.1"), "A") >= 1
        dns.ignore.add(qname("127.0.0.2"))
        start = time.monotonic()
        assert send(s.ports["smtp"], "127.0.0.2") == (250, "")
        assert time.monotonic() - start < TIMEOUT_S + 5       # not the 20 s of [dns]
        assert s.wait_event("dnsbl.failed_open", zone=ZONE, client="127.0.0.2")["reason"] == "timeout"
