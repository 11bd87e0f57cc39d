"""DMARC (RFC 7489) cross-check: for a table of From domains, DMARC records (at the From
domain or its organizational domain, strict and relaxed alignment, sp=, p=none/quarantine/
reject, none at all), SPF records and DKIM signatures made with Debian's python3-dkim, the
dmarc result and policy of `postern verify --json` equal those of an independent evaluator,
Debian's python3-authheaders (with pyspf and python3-dkim underneath). Both resolve through
tests/e2e/dns_server.py on loopback.

authheaders is pointed at the loopback server by replacing dnspython's default resolver: its
DMARC lookup (dmarc_lookup.dns_query), pyspf (DNSLookup_dnspython) and python3-dkim
(dnsplug.get_txt_dnspython) all go through dns.resolver.query. Its `dnsfunc` parameter is
not used: authheaders hands the same function to DMARC (which wants str) and DKIM (bytes).

Where authheaders is wrong and Postern follows the RFC, the case is in DIFFERENCES (checked
both ways, not counted as agreement): sp= applied to the From domain's own record (RFC 7489
§6.3: sp= is for subdomains), a record with rua= but no valid p= (§6.6.3 step 6: as p=none;
authheaders: no DMARC), an unlisted TLD (below).
Not in either table:
- a syntactically broken record (Postern: permerror, RFC 7489 §11.2; authheaders: none or
  a made-up policy) and p= not directly after v= (§6.4 ABNF; authheaders takes p= anywhere);
- pct= sampling (authheaders reports the requested policy only; Postern's disposition
  depends on a random roll): only the policy is compared, and the table uses pct=100;
- more than one DKIM signature (authheaders checks only the first), domains with '-'
  (its get_domain_part stops at the first '-'), and an empty MAIL FROM.
Organizational domains: CASES use names under listed suffixes only (.com, .org, .co.uk,
...). Under an unlisted TLD (".example", ".test") the two differ, and Postern is right: the
PSL algorithm's implicit rule "*" (publicsuffix.org/list, "If no rules match, the prevailing
rule is '*'") makes "a.example" its own organizational domain, while python3-publicsuffix2
as authheaders calls it returns "example" for every such name, so unrelated domains would
align. Otherwise both use Debian's publicsuffix data (authheaders via
authheaders/findpsl.py -> /usr/share/publicsuffix/public_suffix_list.dat, Postern via
libpsl's psl_latest()), so the co.uk cases must agree.
"""

import base64
import json
import re
import subprocess

import authheaders
import dkim
import dns.resolver
import pytest

from dns_server import DnsServer
from verify_cli import verify

# pyspf and authheaders call dnspython's deprecated dns.resolver.query(); not this test's business.
pytestmark = pytest.mark.filterwarnings("ignore:please use dns.resolver.resolve:DeprecationWarning")

CLIENT_IP = "192.0.2.10"
HELO = "client.helo.example"
SELECTOR = "sel"
AUTHSERV_ID = "mx.test"
SPF_PASS = f"v=spf1 ip4:{CLIENT_IP} -all"
SPF_FAIL = "v=spf1 -all"

# DMARC records, by the domain they are published at (under _dmarc.).
DMARC = {
    "example.com": "v=DMARC1; p=reject",
    "example.org": "v=DMARC1; p=quarantine; adkim=s; aspf=s",
    "example.info": "v=DMARC1; p=none; sp=reject",
    "own.example.info": "v=DMARC1; p=quarantine",
    "example.biz": "v=DMARC1; p=quarantine; pct=100; rua=mailto:dmarc@example.biz",
    "example.co.uk": "v=DMARC1; p=reject; sp=quarantine",
    "example.de": "v=DMARC1; p=reject; adkim=s; aspf=r",
    "example.fr": "v=DMARC1; P=REJECT; ASPF=R",
    "example.nl": "v=DMARC1; p=none",
    "example.se": ["google-site-verification=abc", "v=DMARC1; p=reject"],
    "example.pl": "v=DMARC1; rua=mailto:dmarc@example.pl",
    "alpha.example": "v=DMARC1; p=reject",
    "example.dk": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
}

# MAIL FROM domains with an SPF record: pass for CLIENT_IP, or -all.
SPF = {d: SPF_PASS for d in (
    "example.com", "mail.example.com", "example.net", "example.org", "mail.example.org",
    "example.info", "example.co.uk", "mail.example.co.uk", "sample.co.uk", "example.at",
    "example.de", "mail.example.de", "example.fr", "example.biz", "example.se",
    "example.dk", "example.nl")}
SPF["spffail.example.com"] = SPF_FAIL
SPF["other.example"] = SPF_PASS

# (name, From domain, MAIL FROM, DKIM d= or None, tamper with the body after signing,
#  expected dmarc result, expected policy or None when there is none)
CASES = [
    ("spf aligned exact", "example.com", "b@example.com", None, False, "pass", "reject"),
    ("spf aligned relaxed", "example.com", "b@mail.example.com", None, False, "pass", "reject"),
    ("spf pass unaligned", "example.com", "b@example.net", None, False, "fail", "reject"),
    ("spf fail aligned", "example.com", "b@spffail.example.com", None, False, "fail", "reject"),
    ("dkim aligned exact", "example.com", "b@example.net", "example.com", False, "pass", "reject"),
    ("dkim aligned relaxed", "example.com", "b@example.net", "news.example.com", False, "pass", "reject"),
    ("dkim unaligned", "example.com", "b@example.net", "example.net", False, "fail", "reject"),
    ("dkim broken", "example.com", "b@example.net", "example.com", True, "fail", "reject"),
    ("From subdomain, org record", "news.example.com", "b@example.com", None, False, "pass", "reject"),
    ("From subdomain unaligned", "news.example.com", "b@example.net", None, False, "fail", "reject"),
    ("strict spf exact", "example.org", "b@example.org", None, False, "pass", "quarantine"),
    ("strict spf subdomain", "example.org", "b@mail.example.org", None, False, "fail", "quarantine"),
    ("strict dkim exact", "example.org", "b@example.net", "example.org", False, "pass", "quarantine"),
    ("strict dkim subdomain", "example.org", "b@example.net", "sub.example.org", False, "fail",
     "quarantine"),
    ("strict From subdomain", "a.example.org", "b@example.org", None, False, "fail", "quarantine"),
    ("sp for subdomain", "x.example.info", "b@example.net", None, False, "fail", "reject"),
    ("sp subdomain aligned", "x.example.info", "b@example.info", None, False, "pass", "reject"),
    ("subdomain own record", "own.example.info", "b@example.net", None, False, "fail", "quarantine"),
    ("co.uk org aligned", "www.example.co.uk", "b@mail.example.co.uk", None, False, "pass", "quarantine"),
    ("co.uk sp", "shop.example.co.uk", "b@sample.co.uk", None, False, "fail", "quarantine"),
    ("co.uk dkim relaxed", "shop.example.co.uk", "b@sample.co.uk", "example.co.uk", False, "pass", "quarantine"),
    ("co.uk sibling not aligned", "www.example.co.uk", "b@sample.co.uk", "sample.co.uk", False, "fail",
     "quarantine"),
    ("no record", "example.at", "b@example.at", None, False, "none", None),
    ("no record, subdomain", "sub.example.at", "b@example.at", "example.at", False, "none", None),
    ("non-DMARC TXT ignored", "example.se", "b@example.net", None, False, "fail", "reject"),
    ("two records: none", "example.dk", "b@example.dk", None, False, "none", None),
    ("upper-case tags and values", "example.fr", "b@mail.example.co.uk", None, False, "fail", "reject"),
    ("adkim=s aspf=r: spf relaxed", "example.de", "b@mail.example.de", None, False, "pass", "reject"),
    ("adkim=s aspf=r: dkim sub", "example.de", "b@example.net", "sub.example.de", False, "fail", "reject"),
    ("p=quarantine aligned", "example.biz", "b@example.biz", None, False, "pass", "quarantine"),
    ("p=none unaligned", "example.nl", "b@example.net", None, False, "fail", "none"),
]


# Cases where authheaders is wrong and Postern follows the RFC: (name, From, MAIL FROM, DKIM d=,
# tamper, Postern's (result, policy), authheaders' (result, policy)). Checked both ways so this
# list stays true; they do not count towards the agreeing cases above.
DIFFERENCES = [
    # RFC 7489 §6.3: sp= is the policy for subdomains; the From domain's own record applies p=.
    # authheaders applies sp= to the From domain itself.
    ("sp= not for the domain itself", "example.info", "b@example.net", None, False, ("fail", "none"),
     ("fail", "reject")),
    ("sp= not for the domain itself, co.uk", "example.co.uk", "b@mail.example.co.uk", None, False,
     ("pass", "reject"), ("pass", "quarantine")),
    # RFC 7489 §6.6.3 step 6: no valid p= but a valid rua=: as p=none. authheaders: no DMARC.
    ("no p=, rua= present", "example.pl", "b@example.net", None, False, ("fail", "none"), ("none", None)),
    # Unlisted TLD: the PSL's implicit "*" rule makes alpha.example and other.example different
    # organizational domains; publicsuffix2 (authheaders) gives "example" for both and aligns them.
    ("unlisted TLD", "alpha.example", "b@other.example", None, False, ("fail", "reject"), ("pass", "reject")),
]


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    d = tmp_path_factory.mktemp("dkimkey")
    key = d / "key.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    return key.read_bytes(), base64.b64encode(der).decode()


def zone(public_key_b64):
    records = {}
    for domain, rec in DMARC.items():
        records[f"_dmarc.{domain}"] = [("TXT", r) for r in (rec if isinstance(rec, list) else [rec])]
    for domain, rec in SPF.items():
        records.setdefault(domain, []).append(("TXT", rec))
    for case in CASES + DIFFERENCES:
        d = case[3]
        if d:
            records[f"{SELECTOR}._domainkey.{d}"] = [("TXT", f"v=DKIM1; k=rsa; p={public_key_b64}")]
    return records


def make_message(name, from_domain, dkim_d, tamper, private_key):
    subject = re.sub(r"[^a-z0-9]+", "-", name.lower())
    msg = (f"From: Sender <sender@{from_domain}>\r\n"
           f"To: rcpt@mx.test\r\n"
           f"Subject: {subject}\r\n"
           f"Date: Wed, 2 Dec 2026 17:00:00 +0000\r\n"
           f"Message-ID: <{subject}@{from_domain}>\r\n"
           f"\r\n"
           f"Hello.\r\n").encode()
    if dkim_d:
        sig = dkim.sign(msg, SELECTOR.encode(), dkim_d.encode(), private_key,
                        include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        msg = sig + msg
        if tamper:
            msg = msg.replace(b"Hello.", b"Hello!")
    return msg


class LoopbackResolver:
    """dnspython's default resolver pointed at the test server while in use."""

    def __init__(self, address):
        host, port = address.rsplit(":", 1)
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = [host]
        self.resolver.port = int(port)
        self.resolver.lifetime = 5

    def __enter__(self):
        self.saved = dns.resolver.default_resolver
        dns.resolver.default_resolver = self.resolver
        return self

    def __exit__(self, *exc):
        dns.resolver.default_resolver = self.saved


def authheaders_dmarc(msg, mail_from):
    """(result, policy or None) from authheaders' Authentication-Results."""
    header = authheaders.authenticate_message(msg, AUTHSERV_ID, ip=CLIENT_IP, mail_from=mail_from, helo=HELO,
                                              spf=True, dkim=True, dmarc=True)
    result = re.search(r"\bdmarc=(\w+)", header)
    policy = re.search(r"\bpolicy\.dmarc=(\w+)", header)
    assert result, header
    return result.group(1), (policy.group(1) if policy else None), header


def evaluate(server, private_key, name, from_domain, mail_from, dkim_d, tamper):
    """(authheaders' (result, policy), its header, Postern's verify --json dmarc object, its JSON)."""
    msg = make_message(name, from_domain, dkim_d, tamper, private_key)
    ah_result, ah_policy, ah_header = authheaders_dmarc(msg, mail_from)
    verdict = verify((server.host, server.port), msg, CLIENT_IP, helo=HELO, mail_from=mail_from)
    dm = verdict["dmarc"]
    assert dm["header_from"] == from_domain, (name, dm)
    if dm["result"] == "pass":
        assert dm["disposition"] == "none", (name, dm)
    elif dm["result"] == "fail":
        assert dm["disposition"] == dm["policy"], (name, dm)   # pct=100 everywhere
    return (ah_result, ah_policy), ah_header, dm, verdict


def test_dmarc_crosscheck(rsa_key):
    assert len(CASES) >= 25
    private_key, public_key = rsa_key
    with DnsServer(zone(public_key)) as server, LoopbackResolver(server.address):
        disagreements = []
        for name, from_domain, mail_from, dkim_d, tamper, want_result, want_policy in CASES:
            ah, ah_header, dm, verdict = evaluate(server, private_key, name, from_domain, mail_from,
                                                  dkim_d, tamper)
            # The table itself is checked against the independent evaluator first.
            assert ah == (want_result, want_policy), (name, ah_header)
            # authheaders has no policy when there is no DMARC result; Postern says "none" then.
            got = (dm["result"], dm["policy"] if ah[1] is not None else None)
            if got != ah:
                disagreements.append((name, got, ah, verdict.get("header"), ah_header))
    assert not disagreements, "\n".join(map(repr, disagreements))


def test_dmarc_known_authheaders_differences(rsa_key):
    private_key, public_key = rsa_key
    with DnsServer(zone(public_key)) as server, LoopbackResolver(server.address):
        for name, from_domain, mail_from, dkim_d, tamper, rfc, theirs in DIFFERENCES:
            ah, ah_header, dm, _ = evaluate(server, private_key, name, from_domain, mail_from, dkim_d,
                                            tamper)
            assert ah == theirs, (name, "authheaders changed; move the case to CASES?", ah_header)
            assert (dm["result"], dm["policy"]) == rfc, (name, dm)
