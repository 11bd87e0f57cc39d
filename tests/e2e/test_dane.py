"""DANE for outbound SMTP (RFC 7672): TLSA records of an MX host, from DNS answers that a
validating resolver on loopback marked authentic (AD, RFC 4035 §3.2.3; tests/e2e/dns_server.py
`secure`), decide how the MX's certificate is checked. Real Postern, real DNS responder, real
MX (aiosmtpd, tests/e2e/mx_server.py) with STARTTLS, all on loopback.

Cases: a matching DANE-EE(3) record (on a certificate whose name is not the MX's: DANE-EE
ignores names, §3.1.1) -> delivered, the log says dane-ee; a mismatching record -> deferred
with a reason naming DANE, nothing at the MX; secure answers without TLSA -> ordinary
opportunistic TLS; TLSA records in answers that are not authentic -> ignored; a TLSA lookup
that fails for a secure MX -> the host is skipped as a temporary failure (§2.2); an MX without
STARTTLS under a TLSA record -> deferred; DANE-TA(2) with a private CA and tls = "dane", and
its name check; tls = "dane" with a resolver off loopback is logged at start."""

import hashlib
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from dns_server import DnsServer
from harness import Postern, free_port, make_cert, wait_until
from mx_server import MxServer
from test_outbound import outbound, submit

MX_HOST = "mx1.example.org"
MX_IP = "127.0.0.5"


def spki_sha256(cert_path):
    """The "3 1 1" association data: SHA-256 of the certificate's SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def cert_sha256(cert_path):
    """The "x 0 1" association data: SHA-256 of the whole certificate (DER)."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def zone(port, tlsa=None):
    records = {"example.org": [("MX", f"10 {MX_HOST}")], MX_HOST: [("A", MX_IP)]}
    if tlsa:
        records[f"_{port}._tcp.{MX_HOST}"] = [("TLSA", t) for t in tlsa]
    return records


def make_ca_and_leaf(directory, leaf_name):
    """A private CA and a leaf for `leaf_name` signed by it; returns (ca_cert, chain, key)
    where `chain` is leaf + CA (the server sends the CA so DANE-TA(2) can match it)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_crt = directory / "ca.key", directory / "ca.crt"
    key, csr, crt = directory / "leaf.key", directory / "leaf.csr", directory / "leaf.crt"
    ext = directory / "leaf.ext"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)
    run("req", "-x509", *ec, "-days", "30", "-subj", "/CN=Test DANE-TA CA", "-keyout", str(ca_key),
        "-out", str(ca_crt), "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=keyCertSign")
    run("req", "-new", *ec, "-subj", f"/CN={leaf_name}", "-keyout", str(key), "-out", str(csr))
    ext.write_text(f"subjectAltName=DNS:{leaf_name}\nbasicConstraints=CA:FALSE\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-days", "30", "-extfile", str(ext), "-out", str(crt))
    chain = directory / "chain.crt"
    chain.write_bytes(crt.read_bytes() + ca_crt.read_bytes())
    return ca_crt, chain, key


def test_matching_dane_ee_record_delivers_over_verified_tls(tmp_path):
    port = free_port(MX_IP)
    # The certificate names another host: DANE-EE(3) binds the key, not the name (§3.1.1).
    cert, key = make_cert(tmp_path / "mxtls", cn="unrelated.invalid", names=("unrelated.invalid",))
    records = zone(port, [f"3 1 1 {spki_sha256(cert)}"])
    with DnsServer(records, secure={"*"}) as dns, MxServer(MX_IP, port, starttls=(cert, key)) as mx, \
            outbound(tmp_path, dns, port) as s:
        submit(s, "bob@example.org", subject="dane ee")
        ev = s.wait_event("delivery.sent", to="bob@example.org", timeout=15)
        assert ev["tls"].startswith("TLSv1.") and ev["tls"].endswith(" dane-ee"), ev
        assert ev["relay"] == f"{MX_HOST}[{MX_IP}]:{port}", ev
        v = s.wait_event("delivery.dane_verified")
        assert v["dane"] == "dane-ee" and v["relay"] == ev["relay"], v
        assert len(mx.messages) == 1 and mx.messages[0].tls
        assert dns.ad_queries > 0, "the resolver must ask with the AD bit (RFC 6840 §5.7)"
        assert (f"_{port}._tcp.{MX_HOST}", "TLSA") in dns.queries


def test_mismatching_record_defers_and_names_dane(tmp_path):
    port = free_port(MX_IP)
    cert, key = make_cert(tmp_path / "mxtls", cn=MX_HOST, names=(MX_HOST,))
    records = zone(port, ["3 1 1 " + "00" * 32])
    with DnsServer(records, secure={"*"}) as dns, MxServer(MX_IP, port, starttls=(cert, key)) as mx, \
            outbound(tmp_path, dns, port) as s:
        submit(s, "bob@example.org", subject="dane mismatch")
        d = s.wait_event("delivery.deferred", to="bob@example.org", timeout=15)
        assert "DANE: certificate does not match the TLSA records" in d["reason"], d
        assert d["dsn"].startswith("4."), d
        failed = s.wait_event("delivery.connect_failed")
        assert "DANE" in failed["reason"], failed
        # Never a plaintext retry: DANE is not opportunistic once the records say so.
        assert not s.log_events("delivery.tls_fallback")
        assert mx.messages == []


def test_secure_answers_without_tlsa_use_opportunistic_tls(tmp_path):
    port = free_port(MX_IP)
    cert, key = make_cert(tmp_path / "mxtls", cn="self-signed.invalid", names=("self-signed.invalid",))
    with DnsServer(zone(port), secure={"*"}) as dns, MxServer(MX_IP, port, starttls=(cert, key)) as mx, \
            outbound(tmp_path, dns, port) as s:
        submit(s, "bob@example.org", subject="no tlsa")
        ev = s.wait_event("delivery.sent", to="bob@example.org", timeout=15)
        assert ev["tls"].startswith("TLSv1.") and "dane" not in ev["tls"], ev
        assert (f"_{port}._tcp.{MX_HOST}", "TLSA") in dns.queries   # looked up, securely absent
        assert len(mx.messages) == 1 and mx.messages[0].tls
        assert not s.log_events("delivery.dane_verified")


def test_tlsa_in_insecure_answers_is_ignored(tmp_path):
    port = free_port(MX_IP)
    cert, key = make_cert(tmp_path / "mxtls", cn=MX_HOST, names=(MX_HOST,))
    # A record that would not match: were it used, the delivery would be deferred.
    records = zone(port, ["3 1 1 " + "00" * 32])
    with DnsServer(records) as dns, MxServer(MX_IP, port, starttls=(cert, key)) as mx, \
            outbound(tmp_path, dns, port) as s:
        submit(s, "bob@example.org", subject="insecure tlsa")
        ev = s.wait_event("delivery.sent", to="bob@example.org", timeout=15)
        assert ev["tls"].startswith("TLSv1.") and "dane" not in ev["tls"], ev
        assert len(mx.messages) == 1
        # RFC 7672 §2.2.1: an insecure MX RRset means no DANE for the domain: no TLSA query.
        assert (f"_{port}._tcp.{MX_HOST}", "TLSA") not in dns.queries


def test_tlsa_lookup_failure_on_a_secure_mx_skips_the_host(tmp_path):
    port = free_port(MX_IP)
    cert, key = make_cert(tmp_path / "mxtls", cn=MX_HOST, names=(MX_HOST,))
    tlsa_name = f"_{port}._tcp.{MX_HOST}"
    with DnsServer(zone(port), secure={"*"}, servfail={tlsa_name}) as dns, \
            MxServer(MX_IP, port, starttls=(cert, key)) as mx, outbound(tmp_path, dns, port) as s:
        submit(s, "bob@example.org", subject="tlsa servfail")
        d = s.wait_event("delivery.deferred", to="bob@example.org", timeout=15)
        assert "TLSA lookup" in d["reason"] and "SERVFAIL" in d["reason"], d
        assert mx.connections == 0 and mx.messages == []
        # Once the lookup works (securely empty), the retry delivers.
        dns.servfail.clear()
        ev = s.wait_event("delivery.sent", to="bob@example.org", timeout=20)
        assert "dane" not in ev["tls"], ev


def test_dane_requires_starttls(tmp_path):
    port = free_port(MX_IP)
    cert, _ = make_cert(tmp_path / "mxtls", cn=MX_HOST, names=(MX_HOST,))
    records = zone(port, [f"3 1 1 {spki_sha256(cert)}"])
    with DnsServer(records, secure={"*"}) as dns, MxServer(MX_IP, port) as mx, outbound(tmp_path, dns, port) as s:
        submit(s, "bob@example.org", subject="no starttls")
        d = s.wait_event("delivery.deferred", to="bob@example.org", timeout=15)
        assert "DANE: the server does not offer STARTTLS" in d["reason"], d
        assert mx.messages == []


def test_dane_ta_with_a_private_ca_and_tls_dane_route(tmp_path):
    port = free_port(MX_IP)
    ca, chain, key = make_ca_and_leaf(tmp_path / "pki", MX_HOST)
    # Usage 0/1 records are not for SMTP (§3.1): present but ignored; 2 0 1 names the CA.
    records = zone(port, [f"0 0 1 {cert_sha256(ca)}", f"2 0 1 {cert_sha256(ca)}"])
    with DnsServer(records, secure={"*"}) as dns, MxServer(MX_IP, port, starttls=(chain, key)) as mx, \
            outbound(tmp_path, dns, port, extra='\n[[route]]\ntls = "dane"\n') as s:
        submit(s, "bob@example.org", subject="dane ta")
        ev = s.wait_event("delivery.sent", to="bob@example.org", timeout=15)
        assert ev["tls"].endswith(" dane-ta"), ev
        assert len(mx.messages) == 1 and mx.messages[0].tls
        assert not s.log_events("delivery.dane_unavailable")   # the resolver is on loopback


def test_dane_ta_checks_the_name(tmp_path):
    port = free_port(MX_IP)
    ca, chain, key = make_ca_and_leaf(tmp_path / "pki", "other.example.net")
    records = zone(port, [f"2 0 1 {cert_sha256(ca)}"])
    with DnsServer(records, secure={"*"}) as dns, MxServer(MX_IP, port, starttls=(chain, key)) as mx, \
            outbound(tmp_path, dns, port) as s:
        submit(s, "bob@example.org", subject="dane ta wrong name")
        d = s.wait_event("delivery.deferred", to="bob@example.org", timeout=15)
        assert "DANE" in d["reason"], d
        assert mx.messages == []
        wait_until(lambda: s.log_events("delivery.connect_failed"), what="the failed connection logged")


def test_tls_dane_with_a_non_loopback_resolver_is_logged_at_start(tmp_path):
    # Nothing is asked of this resolver (no mail is sent): the start-up check reads the list.
    toml = '[dns]\nservers = ["192.0.2.53"]\n\n[[route]]\ntls = "dane"\n'
    with Postern(tmp_path / "p", extra_toml=toml) as s:
        ev = s.wait_event("delivery.dane_unavailable")
        assert "non-loopback resolver" in ev["reason"], ev
