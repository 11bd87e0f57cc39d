"""DMARC results cross-checked with a second, independent implementation: rspamd's dmarc
module. The message goes through Postern with a PROXY header naming the client, Postern
verifies it and hands it to rspamd as a [[milter]] (which is told the same real client
address); both write their Authentication-Results into the stored message (rspamd's under
another field name, so that ours is not touched), and the dmarc= results must agree.

rspamd computes SPF and DKIM itself from the same loopback DNS server, so a disagreement in
either shows up here too. The table stays inside what both read the same way (see
test_dmarc_crosscheck.py for the wider table against python3-authheaders): relaxed
alignment uses a suffix in the Public Suffix List (.org), since for names under an unlisted
TLD such as .test libpsl applies the list's implicit "*" rule (relaxed.test is an
organizational domain) and rspamd's own list does not."""

import re

import dkim
import pytest

from dns_server import DnsServer
from harness import Postern, wait_until
from test_milter_rspamd import RSPAMD, Rspamd   # noqa: F401 (the skip marker's condition)
from test_verify import ProxiedSMTP, auth_results, header_block

pytestmark = pytest.mark.skipif(not __import__("os").path.exists(RSPAMD), reason="rspamd is not installed")

GOOD = "192.0.2.10"
BAD = "198.51.100.7"


def records(public_key_b64):
    r = {}
    for d, policy in (("pass.test", "p=reject"), ("quar.test", "p=quarantine"), ("none-rec.test", None),
                      ("relaxed-example.org", "p=reject"), ("strict.test", "p=reject; aspf=s"), ("signed.test", "p=reject")):
        r[d] = [("TXT", f"v=spf1 ip4:{GOOD} -all")]
        if policy:
            r[f"_dmarc.{d}"] = [("TXT", f"v=DMARC1; {policy}")]
    for sub in ("mail.relaxed-example.org", "mail.strict.test"):
        r[sub] = [("TXT", f"v=spf1 ip4:{GOOD} -all")]
    r["sel._domainkey.signed.test"] = [("TXT", f"v=DKIM1; k=rsa; p={public_key_b64}")]
    return r


# (name, client address, MAIL FROM, From domain, sign with DKIM, expected dmarc result)
CASES = [
    ("spf aligned", GOOD, "news@pass.test", "pass.test", False, "pass"),
    ("spf fails, p=reject", BAD, "news@pass.test", "pass.test", False, "fail"),
    ("spf fails, p=quarantine", BAD, "news@quar.test", "quar.test", False, "fail"),
    ("no record", GOOD, "news@none-rec.test", "none-rec.test", False, "none"),
    ("relaxed alignment (a listed suffix: .org)", GOOD, "bounce@mail.relaxed-example.org", "relaxed-example.org", False, "pass"),
    ("strict alignment", GOOD, "bounce@mail.strict.test", "strict.test", False, "fail"),
    ("dkim aligned, spf fails", BAD, "news@signed.test", "signed.test", True, "pass"),
]


@pytest.fixture(scope="module")
def rsa_key(tmp_path_factory):
    import subprocess
    d = tmp_path_factory.mktemp("key")
    key = d / "k.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"], check=True, capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"], check=True,
                         capture_output=True).stdout
    import base64
    return key.read_bytes(), base64.b64encode(der).decode()


def rspamd_dmarc(header_lines):
    """rspamd's dmarc= result from its field (X-Rspamd-AR), or None."""
    text = " ".join(header_lines)
    m = re.search(r"X-Rspamd-AR:.*?\bdmarc=(\w+)", text)
    return m.group(1) if m else None


def test_dmarc_agrees_with_rspamd(tmp_path, rsa_key):
    private_key, public_b64 = rsa_key
    with DnsServer(records(public_b64)) as dns:
        r = Rspamd(tmp_path / "rspamd", dns.address)
        # rspamd's own Authentication-Results under another name: ours stays as we wrote it.
        (r.dir / "etc/local.d/milter_headers.conf").write_text(
            'use = ["authentication-results"];\nskip_local = false;\nskip_authenticated = false;\n'
            'routines {\n  authentication-results {\n    header = "X-Rspamd-AR";\n    remove = 0;\n  }\n}\n')
        r.start()
        try:
            toml = (f'[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\n\n'
                    f'[[milter]]\naddress = "127.0.0.1:{r.port}"\ncommand_timeout = "20s"\nmessage_timeout = "60s"\n')
            with Postern(tmp_path / "p", listeners=[("smtp", "required")], extra_toml=toml) as s:
                for i, (name, ip, mail_from, from_domain, sign, _) in enumerate(CASES):
                    msg = (f"From: <news@{from_domain}>\r\nTo: <alice@example.test>\r\nSubject: case {i}\r\n"
                           f"Message-ID: <case{i}@{from_domain}>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n"
                           f"Case {name}.\r\n").encode()
                    if sign:
                        msg = dkim.sign(msg, b"sel", from_domain.encode(), private_key,
                                        include_headers=[b"from", b"to", b"subject"]) + msg
                    with ProxiedSMTP(s.ports["smtp"], ip, timeout=90) as c:
                        c.ehlo("client.example.net")
                        c.sendmail(mail_from, ["alice@example.test"], msg)
                files = s.wait_mail("alice@example.test", count=len(CASES), timeout=60)
                got = {}
                for f in files:
                    data = f.read_bytes()
                    lines = header_block(data).split("\n")
                    case = int([l for l in lines if l.startswith("Subject: case ")][0].split()[-1])
                    ours = re.search(r"\bdmarc=(\w+)", auth_results(data) or "")
                    got[case] = (ours.group(1) if ours else None, rspamd_dmarc(lines), data[:3000])
        finally:
            r.stop()
    disagreements = []
    for i, (name, *_, expected) in enumerate(CASES):
        ours, theirs, head = got[i]
        if ours != expected or theirs != expected:
            disagreements.append(f"{name}: postern={ours} rspamd={theirs} expected={expected}\n{head.decode(errors='replace')}")
    assert not disagreements, "\n\n".join(disagreements)
