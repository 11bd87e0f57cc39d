"""DKIM and ARC verification cross-checked against Debian's python3-dkim (dkimpy): a table of
messages signed by dkimpy (RSA 1024/2048 and Ed25519 keys, every c= combination, l=, several
signatures, folded headers, empty bodies, trailing blank lines, 8-bit bodies), each also
tampered, is verified by `postern verify --json` against tests/e2e/dns_server.py serving the
keys, and by dkim.verify with the same records; the two must agree on every signature. ARC
chains of 1, 2 and 3 hops sealed by dkim.arc_sign (and broken ones) are compared with
dkim.arc_verify the same way. Mail signed by Postern itself (submission) is verified by both.

Known, deliberate difference, tested on its own: rsa-sha1 signatures, which dkimpy still
accepts, are dkim=policy for Postern (RFC 8301 §3.1)."""

import base64
import re
import smtplib
import ssl
import subprocess

import dkim
import nacl.signing
import pytest

from dns_server import DnsServer
from harness import Postern
from verify_cli import verify

NOW_FROM = "Mon, 1 Jan 2024 10:00:00 +0000"
ONLY_DKIM_ARC = "spf = false\ndmarc = false"


def rsa_key(bits):
    pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"],
                         capture_output=True, check=True).stdout
    pem = subprocess.run(["openssl", "rsa", "-traditional"], input=pem, capture_output=True, check=True).stdout
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=pem, capture_output=True,
                         check=True).stdout
    return pem, "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def ed_key():
    sk = nacl.signing.SigningKey.generate()
    return (base64.b64encode(bytes(sk)),
            "v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(sk.verify_key)).decode())


@pytest.fixture(scope="module")
def keys():
    """{name: (private key for dkimpy, selector, domain, TXT value)}."""
    out = {}
    for name, (bits, domain) in {"rsa1024": (1024, "example.test"), "rsa2048": (2048, "example.test"),
                                 "arc1": (2048, "hop1.example"), "arc2": (1024, "hop2.example"),
                                 "arc3": (2048, "hop3.example")}.items():
        pem, txt = rsa_key(bits)
        out[name] = (pem, name, domain, txt)
    priv, txt = ed_key()
    out["ed25519"] = (priv, "ed25519", "example.test", txt)
    priv, txt = ed_key()
    out["edsub"] = (priv, "edsub", "sub.example.test", txt)
    return out


@pytest.fixture(scope="module")
def dns(keys):
    records = {f"{sel}._domainkey.{dom}": [("TXT", txt)] for _, sel, dom, txt in keys.values()}
    records["revoked._domainkey.example.test"] = [("TXT", "v=DKIM1; k=rsa; p=")]
    with DnsServer(records) as server:
        yield server


def dnsfunc_for(server):
    """dkimpy's view of the same zone (its dnsfunc gets 'name.' as bytes)."""
    def lookup(name, timeout=5):
        name = name.decode().rstrip(".").lower()
        for rtype, value, *_ in server.records.get(name, []):
            if rtype == "TXT":
                return value.encode()
        return None
    return lookup


def msg(subject="cross-check", body=b"Hello Bob,\r\n\r\nsee you.  \r\n", extra=b""):
    return (f"From: Alice <alice@example.test>\r\n"
            f"To: Bob <bob@example.org>\r\n"
            f"Subject: {subject}\r\n"
            f"Date: {NOW_FROM}\r\n"
            f"Message-ID: <{abs(hash(subject))}@example.test>\r\n").encode() + extra + b"\r\n" + body


def sign(keys, name, message, canon=(b"relaxed", b"relaxed"), length=False, include=None, identity=None,
         algorithm=None):
    priv, sel, dom, _ = keys[name]
    alg = algorithm or (b"ed25519-sha256" if name.startswith("ed") else b"rsa-sha256")
    return dkim.sign(message, sel.encode(), dom.encode(), priv, canonicalize=canon, length=length,
                     include_headers=include, identity=identity, signature_algorithm=alg)


FOLDED = (b"Subject: a rather long subject line that goes on and on\r\n"
          b"\tand is folded once\r\n  and twice with spaces   \r\n")
LONG_BODY = b"".join(b"line %d of a long body, with  double  spaces and a tab\there \r\n" % i for i in range(3000))


def cases(keys):
    """(name, message with its signatures, tamper function or None)."""
    rr, rs, ss, sr = (b"relaxed", b"relaxed"), (b"relaxed", b"simple"), (b"simple", b"simple"), (b"simple", b"relaxed")
    body_tamper = lambda m: m.replace(b"see you.", b"see YOU.")
    subject_tamper = lambda m: m.replace(b"Subject: cross-check", b"Subject: cross-check!")
    out = []

    def add(name, key, message, tamper=body_tamper, **kw):
        out.append((name, sign(keys, key, message, **kw) + message, tamper))

    for key in ("rsa1024", "rsa2048", "ed25519"):
        for canon_name, canon in (("rr", rr), ("rs", rs), ("ss", ss), ("sr", sr)):
            add(f"{key}_{canon_name}", key, msg(), canon=canon)
    add("subject_changed_rr", "rsa2048", msg(), tamper=subject_tamper, canon=rr)
    add("subject_changed_ss", "ed25519", msg(), tamper=subject_tamper, canon=ss)
    # l=: a footer added after signing keeps the signature (honour_length defaults to on).
    footer = lambda m: m + b"-- \r\nmailing list footer\r\n"
    add("length_rr_footer", "rsa2048", msg(), tamper=footer, canon=rr, length=True)
    add("length_ss_footer", "ed25519", msg(), tamper=footer, canon=ss, length=True)
    add("length_rr_body_changed", "rsa1024", msg(), canon=rr, length=True)
    # Folded and whitespace-heavy headers.
    folded = msg(extra=b"Cc: one@example.org,\r\n two@example.org,\r\n\tthree@example.org\r\n"
                 b"X-Spaces:   lots \t of   space   \r\n")
    folded = folded.replace(b"Subject: cross-check\r\n", FOLDED)
    inc = [b"from", b"to", b"cc", b"subject", b"x-spaces", b"date", b"message-id", b"from"]
    add("folded_rr", "rsa2048", folded, tamper=lambda m: m.replace(b"two@", b"TWO@"), canon=rr, include=inc)
    add("folded_ss", "rsa2048", folded, tamper=lambda m: m.replace(b"lots \t of", b"lots of"), canon=ss, include=inc)
    add("folded_relaxed_refold_ok", "ed25519", folded,
        tamper=lambda m: m.replace(b"lots \t of", b"lots\r\n of"), canon=rs, include=inc)
    # Bodies.
    for canon_name, canon in (("rr", rr), ("ss", ss)):
        add(f"empty_body_{canon_name}", "rsa2048", msg(body=b""), tamper=lambda m: m + b"x\r\n", canon=canon)
        add(f"trailing_blank_lines_{canon_name}", "ed25519", msg(body=b"text\r\n\r\n\r\n\r\n"),
            tamper=lambda m: m + b"\r\n\r\n", canon=canon)
        add(f"blank_lines_changed_{canon_name}", "rsa1024", msg(body=b"a\r\n\r\nb\r\n"),
            tamper=lambda m: m.replace(b"a\r\n\r\nb", b"a\r\n\r\n\r\nb"), canon=canon)
    add("whitespace_lines_rr", "rsa2048", msg(body=b"a \t \r\n  \r\n\t\r\nb  c\r\n \r\n"),
        tamper=lambda m: m.replace(b"b  c", b"b   c"), canon=rr)
    add("whitespace_lines_sr", "rsa2048", msg(body=b"a \t \r\n  \r\n\t\r\nb  c\r\n \r\n"),
        tamper=lambda m: m.replace(b"b  c", b"bc"), canon=sr)
    eight = msg(body="Grüße aus Köln, ça va? 日本語\r\n".encode() + b"\xff\xfe raw bytes\r\n",
                extra=b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
    add("eight_bit_rs", "rsa2048", eight, tamper=lambda m: m.replace("Köln".encode(), "Koln".encode()), canon=rs,
        include=[b"from", b"to", b"subject", b"content-type"])
    add("eight_bit_ss", "ed25519", eight, tamper=lambda m: m.replace(b"\xff\xfe", b"\xfe\xff"), canon=ss)
    add("long_body_rr", "rsa2048", msg(body=LONG_BODY), tamper=lambda m: m.replace(b"line 2999", b"line 2998"),
        canon=rr)
    add("identity_subdomain", "edsub", msg(), canon=rr, identity=b"alice@mail.sub.example.test")
    # Several signatures: Ed25519 over RSA, the RSA one by a different domain's key.
    m = msg(subject="two signatures")
    m = sign(keys, "rsa2048", m, canon=rs) + m
    m = sign(keys, "ed25519", m, canon=rr) + m
    out.append(("two_signatures", m, body_tamper))
    m3 = msg(subject="three signatures")
    for key in ("rsa1024", "edsub", "rsa2048"):
        m3 = sign(keys, key, m3, canon=rr) + m3
    out.append(("three_signatures_subject", m3, lambda m: m.replace(b"three signatures", b"3 signatures")))
    # A signature with no key, and one with a revoked key: neither verifies.
    priv = keys["rsa2048"][0]
    m = msg(subject="no key")
    out.append(("missing_key", dkim.sign(m, b"absent", b"example.test", priv) + m, None))
    m = msg(subject="revoked")
    out.append(("revoked_key", dkim.sign(m, b"revoked", b"example.test", priv) + m, None))
    return out


def count_signatures(message):
    header = message.split(b"\r\n\r\n", 1)[0]
    return sum(1 for line in header.split(b"\r\n") if line.lower().startswith(b"dkim-signature:"))


def compare(dns, message):
    """[(postern result, dkimpy verdict)] per signature, top first."""
    ours = verify((dns.host, dns.port), message, "192.0.2.1", verify_toml=ONLY_DKIM_ARC)["dkim"]
    n = count_signatures(message)
    assert len(ours) == n, ours
    lookup = dnsfunc_for(dns)
    theirs = []
    for i in range(n):
        try:
            theirs.append(bool(dkim.DKIM(message).verify(idx=i, dnsfunc=lookup)))
        except dkim.DKIMException:
            theirs.append(False)
    return list(zip(ours, theirs))


def test_table_agrees_with_dkimpy(keys, dns):
    table = cases(keys)
    assert len(table) >= 20
    disagreements, checked, passes = [], 0, 0
    for name, message, tamper in table:
        variants = [(name, message)] + ([(name + "+tampered", tamper(message))] if tamper else [])
        for vname, m in variants:
            for i, (ours, theirs) in enumerate(compare(dns, m)):
                checked += 1
                passes += ours["result"] == "pass"
                if (ours["result"] == "pass") != theirs:
                    disagreements.append((vname, i, ours, theirs))
    assert not disagreements, disagreements
    assert checked > 60 and passes > 30, (checked, passes)


def test_results_and_reasons(keys, dns):
    """Not just pass/not-pass: the result names and reasons for the table's kinds of failure."""
    table = {name: (m, t) for name, m, t in cases(keys)}
    m, tamper = table["rsa2048_rr"]
    r = compare(dns, tamper(m))[0][0]
    assert (r["result"], r["reason"]) == ("fail", "body hash mismatch")
    m, tamper = table["subject_changed_rr"]
    r = compare(dns, tamper(m))[0][0]
    assert (r["result"], r["reason"]) == ("fail", "signature did not verify")
    m, tamper = table["length_rr_footer"]
    assert compare(dns, tamper(m))[0][0]["result"] == "pass"
    r = compare(dns, table["missing_key"][0])[0][0]
    assert (r["result"], r["reason"]) == ("permerror", "no key for signature")
    r = compare(dns, table["revoked_key"][0])[0][0]
    assert (r["result"], r["reason"]) == ("fail", "key revoked")
    ours = compare(dns, table["two_signatures"][0])
    assert [(o["result"], o["algorithm"], o["domain"]) for o, _ in ours] == [
        ("pass", "ed25519-sha256", "example.test"), ("pass", "rsa-sha256", "example.test")]


def test_rsa_sha1_is_policy_where_dkimpy_accepts_it(keys, dns):
    m = msg(subject="sha1")
    signed = sign(keys, "rsa2048", m, algorithm=b"rsa-sha1") + m
    (ours, theirs), = compare(dns, signed)
    assert theirs is True     # dkimpy 1.1 still verifies rsa-sha1
    assert (ours["result"], ours["reason"]) == ("policy", "rsa-sha1 is not accepted (RFC 8301)")


def test_dns_failure_is_temperror(keys, dns):
    m = msg(subject="servfail")
    signed = sign(keys, "rsa1024", m) + m
    dns.servfail.add("rsa1024._domainkey.example.test")
    try:
        r = verify((dns.host, dns.port), signed, "192.0.2.1", verify_toml=ONLY_DKIM_ARC)["dkim"][0]
    finally:
        dns.servfail.discard("rsa1024._domainkey.example.test")
    assert r["result"] == "temperror", r


# ---------------------------------------------------------------------------------------
# ARC

def arc_chain(keys, hops, footer_at=2):
    """A message sealed by `hops` ARC hops (hop n uses key arc<n>); hop `footer_at` appends a
    list footer to the body before sealing, as a mailing list would."""
    m = msg(subject="arc chain")
    for n in range(1, hops + 1):
        pem, sel, dom, _ = keys[f"arc{n}"]
        results = "spf=pass smtp.mailfrom=example.test" if n == 1 else "arc=pass; spf=pass smtp.mailfrom=example.test"
        m = f"Authentication-Results: {dom}; {results}\r\n".encode() + m
        if n == footer_at:
            m += b"-- \r\nlist footer\r\n"
        sets = dkim.arc_sign(m, sel.encode(), dom.encode(), pem, dom.encode())
        assert sets, n
        m = b"".join(sets) + m
    return m


def compare_arc(dns, message):
    ours = verify((dns.host, dns.port), message, "192.0.2.1", verify_toml=ONLY_DKIM_ARC)["arc"]
    cv, _, reason = dkim.arc_verify(message, dnsfunc=dnsfunc_for(dns))
    theirs = {dkim.CV_Pass: "pass", dkim.CV_Fail: "fail", dkim.CV_None: "none"}.get(cv, str(cv))
    return ours, theirs, reason


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_arc_chains_agree_with_dkimpy(keys, dns, hops):
    m = arc_chain(keys, hops)
    ours, theirs, reason = compare_arc(dns, m)
    assert theirs == "pass", reason
    assert ours["result"] == "pass" and ours["instances"] == hops, ours

    broken = {
        "body": m.replace(b"see you.", b"see YOU."),                          # newest AMS body hash
        "aar1": m.replace(b"ARC-Authentication-Results: i=1; hop1.example",
                          b"ARC-Authentication-Results: i=1; hop9.example"),  # every AS covers AAR i=1
        "seal1": m.replace(b"ARC-Seal: i=1; cv=none", b"ARC-Seal: i=1; cv=pass"),
        "ams1_syntax": m.replace(b"ARC-Message-Signature: i=1; a=rsa-sha256",
                                 b"ARC-Message-Signature: i=1; a=rsa-md5"),   # every set's form counts
    }
    for what, b in broken.items():
        assert b != m, what
        ours, theirs, reason = compare_arc(dns, b)
        assert (ours["result"], theirs) == ("fail", "fail"), (what, ours, reason)


def test_arc_none_and_missing_set(keys, dns):
    ours, theirs, _ = compare_arc(dns, msg(subject="no arc"))
    assert (ours["result"], theirs) == ("none", "none")
    m = arc_chain(keys, 2)
    # Drop AMS i=1 (a folded field) from a 2-hop chain.
    start = m.index(b"ARC-Message-Signature: i=1;")
    end = m.index(b"\r\n", m.index(b" b=", start))
    while m[end + 2:end + 3] in (b" ", b"\t"):
        end = m.index(b"\r\n", end + 2)
    broken = m[:start] + m[end + 2:]
    ours, theirs, _ = compare_arc(dns, broken)
    assert (ours["result"], theirs) == ("fail", "fail"), ours
    assert ours["reason"] == "missing AMS i=1"


# ---------------------------------------------------------------------------------------
# Mail signed by Postern's own signer, verified by both.

def test_postern_signed_mail_verifies_with_both(tmp_path, dns):
    s = Postern(tmp_path / "postern")
    r = s.cli("dkim", "keygen", "example.test", "--selector", "pst", "--type", "ed25519")
    value = "".join(re.findall(r'"([^"]*)"', r.stdout))
    dns.records["pst._domainkey.example.test"] = [("TXT", value)]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with s:
        s.wait_event("dkim.key_loaded", domain="example.test", selector="pst")
        with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=30) as c:
            c.ehlo("laptop")
            c.starttls(context=ctx)
            c.ehlo("laptop")
            c.login("alice@example.test", "alice-secret-1")
            c.sendmail("alice@example.test", ["bob@example.test"], msg(subject="signed by postern"))
        stored = s.wait_mail("bob@example.test")[0].read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    (ours, theirs), = compare(dns, stored)
    assert theirs and ours["result"] == "pass", ours
    (ours, theirs), = compare(dns, stored.replace(b"see you.", b"see YOU."))
    assert not theirs and (ours["result"], ours["reason"]) == ("fail", "body hash mismatch")
