"""Issue 12: MTA-STS (RFC 8461) on outbound delivery. The recipient domain publishes
`_mta-sts` TXT and a policy on https://mta-sts.<domain>/ (a real HTTPS server on loopback,
tests/e2e/mta_sts_server.py, with a certificate from a test CA that [queue] ca_file trusts).
Under `enforce` only the MX hosts the policy names are used and each must present a valid
certificate for its name; under `testing` a mismatch is logged and mail goes through."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from dns_server import DnsServer
from harness import Postern, free_port, wait_until
from mx_server import MxServer
from test_outbound import submit

HERE = Path(__file__).resolve().parent


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def make_ca(d):
    d.mkdir(parents=True, exist_ok=True)
    key, cert = d / "ca.key", d / "ca.crt"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=Postern Test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", "-keyout", str(key), "-out", str(cert))
    return cert, key


def make_leaf(d, ca, name):
    ca_cert, ca_key = ca
    key, csr, cert, ext = d / f"{name}.key", d / f"{name}.csr", d / f"{name}.crt", d / f"{name}.ext"
    ext.write_text(f"subjectAltName=DNS:{name}\nextendedKeyUsage=serverAuth\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", f"/CN={name}",
            "-keyout", str(key), "-out", str(csr))
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


class PolicyServer:
    """tests/e2e/mta_sts_server.py as a subprocess on 127.0.0.9."""

    def __init__(self, d, cert, key, policy, status=200):
        self.response = d / "response.json"
        self.log = d / "requests.log"
        self.response.write_text(json.dumps({"status": status, "content_type": "text/plain", "body": policy}))
        self.port = free_port("127.0.0.9")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(HERE / "mta_sts_server.py"), "--cert", str(cert), "--key", str(key),
             "--response", str(self.response), "--log", str(self.log), "--host", "127.0.0.9",
             "--port", str(self.port)], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("port "), line

    def requests(self):
        return self.log.read_text().splitlines() if self.log.exists() else []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(timeout=10)


def policy(mode, *mx):
    return "version: STSv1\nmode: {}\n{}max_age: 86400\n".format(mode, "".join(f"mx: {m}\n" for m in mx))


@pytest.fixture
def pki(tmp_path):
    d = tmp_path / "pki"
    ca = make_ca(d)
    return {"ca": ca[0], "sts": make_leaf(d, ca, "mta-sts.example.org"), "mx1": make_leaf(d, ca, "mx1.example.org"),
            "rogue": make_leaf(d, ca, "rogue.example.net")}


def records():
    return {"example.org": [("MX", "5 rogue.example.net"), ("MX", "10 mx1.example.org")],
            "rogue.example.net": [("A", "127.0.0.6")],
            "mx1.example.org": [("A", "127.0.0.5")],
            "_mta-sts.example.org": [("TXT", "v=STSv1; id=20261202;")],
            "mta-sts.example.org": [("A", "127.0.0.9")]}


def server(tmp_path, dns, mx_port, sts, ca):
    toml = (f'[queue]\nretry_min = "1s"\nretry_max = "2s"\nremote_port = {mx_port}\nca_file = "{ca}"\n'
            f'mta_sts_port = {sts.port}\n[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\n')
    return Postern(tmp_path / "p", extra_toml=toml)


def test_enforce_skips_hosts_outside_the_policy_and_requires_a_valid_certificate(tmp_path, pki):
    mx_port = free_port("127.0.0.5")
    with DnsServer(records()) as dns, PolicyServer(tmp_path, *pki["sts"], policy("enforce", "mx1.example.org")) as sts, \
            MxServer("127.0.0.6", mx_port, starttls=pki["rogue"]) as rogue, \
            MxServer("127.0.0.5", mx_port, starttls=pki["mx1"]) as mx1, server(tmp_path, dns, mx_port, sts, pki["ca"]) as s:
        submit(s, "bob@example.org", subject="under enforce")
        ev = s.wait_event("delivery.sent", to="bob@example.org", timeout=15)
        assert ev["relay"] == f"mx1.example.org[127.0.0.5]:{mx_port}" and ev["tls_policy"] == "mta-sts", ev
        assert len(mx1.messages) == 1 and mx1.messages[0].tls
        assert not rogue.messages and rogue.connections == 0, "a host outside the policy was used"
        skipped = s.wait_event("mta_sts.mx_mismatch")
        assert skipped["mx"] == "rogue.example.net" and skipped["mode"] == "enforce"
        # A second message: the policy comes from the cache (one fetch in all).
        submit(s, "carol@example.org", subject="cached policy")
        s.wait_event("delivery.sent", to="carol@example.org", timeout=15)
        assert len(sts.requests()) == 1, sts.requests()
        assert (s.data_dir / "state" / "mta-sts-cache.json").exists()


def test_enforce_refuses_an_mx_whose_certificate_does_not_verify(tmp_path, pki):
    mx_port = free_port("127.0.0.5")
    bad = make_leaf(tmp_path / "pki", make_ca(tmp_path / "other-ca"), "mx1.example.org")   # another CA
    recs = records()
    recs["example.org"] = [("MX", "10 mx1.example.org")]
    with DnsServer(recs) as dns, PolicyServer(tmp_path, *pki["sts"], policy("enforce", "mx1.example.org")) as sts, \
            MxServer("127.0.0.5", mx_port, starttls=bad) as mx1, server(tmp_path, dns, mx_port, sts, pki["ca"]) as s:
        submit(s, "bob@example.org", subject="bad certificate")
        ev = s.wait_event("delivery.deferred", to="bob@example.org", timeout=15)
        assert "MTA-STS" in ev["reason"] and ev["tls_policy"] == "mta-sts", ev
        assert not mx1.messages
        # No STARTTLS at all is refused the same way, never sent in plaintext.
        assert not s.log_events("delivery.tls_fallback")


def test_no_allowed_host_defers_with_4_7_5(tmp_path, pki):
    mx_port = free_port("127.0.0.5")
    recs = records()
    recs["example.org"] = [("MX", "5 rogue.example.net")]
    with DnsServer(recs) as dns, PolicyServer(tmp_path, *pki["sts"], policy("enforce", "mx1.example.org")) as sts, \
            MxServer("127.0.0.6", mx_port, starttls=pki["rogue"]) as rogue, \
            server(tmp_path, dns, mx_port, sts, pki["ca"]) as s:
        submit(s, "bob@example.org", subject="nowhere allowed")
        ev = s.wait_event("delivery.deferred", to="bob@example.org", timeout=15)
        assert ev["dsn"] == "4.7.5" and "not an MX host allowed by the MTA-STS policy" in ev["reason"], ev
        assert rogue.connections == 0


def test_testing_mode_logs_the_mismatch_and_delivers(tmp_path, pki):
    mx_port = free_port("127.0.0.5")
    with DnsServer(records()) as dns, PolicyServer(tmp_path, *pki["sts"], policy("testing", "mx1.example.org")) as sts, \
            MxServer("127.0.0.6", mx_port) as rogue, server(tmp_path, dns, mx_port, sts, pki["ca"]) as s:
        submit(s, "bob@example.org", subject="testing mode")
        ev = s.wait_event("delivery.sent", to="bob@example.org", timeout=15)
        assert ev["relay"].startswith("rogue.example.net[127.0.0.6]") and "tls_policy" not in ev, ev
        mm = s.wait_event("mta_sts.mx_mismatch")
        assert mm["mode"] == "testing" and mm["action"] == "delivered anyway (testing)"
        assert len(rogue.messages) == 1


def test_mta_sts_off_ignores_the_policy(tmp_path, pki):
    mx_port = free_port("127.0.0.5")
    with DnsServer(records()) as dns, PolicyServer(tmp_path, *pki["sts"], policy("enforce", "mx1.example.org")) as sts, \
            MxServer("127.0.0.6", mx_port) as rogue:
        toml = (f'[queue]\nremote_port = {mx_port}\nmta_sts = false\n'
                f'[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\n')
        with Postern(tmp_path / "p", extra_toml=toml) as s:
            submit(s, "bob@example.org", subject="sts off")
            s.wait_event("delivery.sent", to="bob@example.org", timeout=15)
        assert len(rogue.messages) == 1 and not sts.requests()
