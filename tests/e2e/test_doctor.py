"""Issue 4 item 6: `postern doctor` against the real binary, and through a real HAProxy.

Each check runs doctor as an operator would, with --ca set to the test server's self-signed
certificate, and asserts on its one line per listener and its exit status. The diagnoses are
the point: the PROXY/listener mismatches DESIGN.md starts with, expiry, hostname mismatch, an
untrusted chain, a server that is not running, AUTH offered before TLS."""

import datetime
import re
import socket
import subprocess
import threading

import pytest

from harness import wait_until, BIN, HOSTNAME, Postern, free_port
from haproxy import HAProxy, Route

SERVICES = ("smtp", "submission", "submissions")
OK_LINE = re.compile(r"^OK   (\S+) (\S+) (TLSv1\.[23]) (\S+) cert=(\S+) expires_in=(\d+)d(.*)$")
# Short, so that doctor's wait for Postern to give up on a missing header stays short too.
PROXY_TOML = '[proxy_protocol]\nheader_timeout = "1s"'


def doctor(server, *args, ca=True):
    cmd = [BIN, "doctor", "--config", str(server.config_path)]
    if ca:
        cmd += ["--ca", str(server.cert)]
    r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=90)
    assert "Traceback" not in r.stderr and "terminate called" not in r.stderr, r.stderr
    return r


def through(name, port):
    return ["--through", f"{name}=127.0.0.1:{port}"]


def lines_of(r):
    return r.stdout.splitlines()


def cert_with_dates(directory, names, not_before, not_after):
    """A self-signed EC certificate with the given validity, as (cert PEM, key PEM) bytes."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def replace_certificate(server, names=(HOSTNAME,), days_before=30, days_after=365):
    """Puts a new certificate into the files the server's config names (before it starts)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    cert, key = cert_with_dates(server.dir, list(names), now - datetime.timedelta(days=days_before),
                                now + datetime.timedelta(days=days_after))
    server.cert.write_bytes(cert)
    server.key.write_bytes(key)


# All well -----------------------------------------------------------------------------------

def test_all_ok_one_line_per_listener_in_order(tmp_path):
    listeners = [("smtp", "off"), ("submission", "required"), ("submissions", "mixed")]
    with Postern(tmp_path / "p", listeners=listeners) as s:
        r = doctor(s)
        assert r.returncode == 0, r.stdout + r.stderr
        lines = lines_of(r)
        assert len(lines) == 3, r.stdout
        for (service, _), line in zip(listeners, lines):
            m = OK_LINE.match(line)
            assert m, line
            assert m.group(1) == service and m.group(2) == f"127.0.0.1:{s.ports[service]}"
            assert m.group(5) == f"{HOSTNAME},localhost"
            assert int(m.group(6)) in (364, 365) and m.group(7) == ""
        # Directly, doctor sends the header the listener expects from 127.0.0.1 (trusted by
        # default): required and mixed get one, off gets none.
        # (log lines come from a background thread: wait for both)
        wait_until(lambda: {e["listener"] for e in s.log_events("proxy.header")} == {"submission", "submissions"},
                   timeout=10, what="proxy.header lines for submission and submissions")
        assert not s.log_events("proxy.unexpected_header") and not s.log_events("proxy.header_missing")


def test_required_listener_checked_directly_gets_a_proxy_v2_header(tmp_path):
    with Postern(tmp_path / "p", listeners=[("submissions", "required")]) as s:
        r = doctor(s)
        assert r.returncode == 0, r.stdout + r.stderr
        assert OK_LINE.match(lines_of(r)[0]), r.stdout
        ev = s.wait_event("proxy.header", listener="submissions")
        assert ev["version"] == "v2" and ev["client"].startswith("127.0.0.1:")


def test_untrusted_chain_without_ca(server):
    r = doctor(server, ca=False)
    assert r.returncode == 1
    lines = lines_of(r)
    assert len(lines) == 3
    for service, line in zip(SERVICES, lines):
        prefix = f"FAIL {service} 127.0.0.1:{server.ports[service]}: "
        assert line.startswith(prefix + "the certificate chain is not trusted"), line
        assert "self-signed" in line and "; fix: " in line and "--ca FILE" in line


# Certificates ------------------------------------------------------------------------------

def test_expired_certificate_fails(tmp_path):
    s = Postern(tmp_path / "p", listeners=[("submissions", "off"), ("submission", "off")])
    replace_certificate(s, days_before=100, days_after=-3)
    with s:
        r = doctor(s)
        assert r.returncode == 1, r.stdout + r.stderr
        lines = lines_of(r)
        assert len(lines) == 2
        for line in lines:
            assert line.startswith("FAIL ") and "expired" in line and "3 days ago" in line, line
            assert "; fix: renew it" in line


def test_certificate_expiring_soon_is_ok_with_a_warning(tmp_path):
    s = Postern(tmp_path / "p", listeners=[("submissions", "off")])
    replace_certificate(s, days_before=80, days_after=5.05)
    with s:
        r = doctor(s)
        assert r.returncode == 0, r.stdout + r.stderr
        m = OK_LINE.match(lines_of(r)[0])
        assert m and m.group(6) == "5" and "warning" in m.group(7) and "expires in 5 days" in m.group(7), r.stdout


def test_hostname_mismatch_names_both(tmp_path):
    s = Postern(tmp_path / "p", listeners=[("submission", "off")])
    replace_certificate(s, names=("other.example.test", "www.other.example.test"))
    with s:
        r = doctor(s)
        assert r.returncode == 1, r.stdout + r.stderr
        line = lines_of(r)[0]
        assert line.startswith(f"FAIL submission 127.0.0.1:{s.ports['submission']}: "), line
        assert "other.example.test, www.other.example.test" in line and f"'{HOSTNAME}'" in line
        assert "; fix: " in line


# Through HAProxy: the failure DESIGN.md exists for ---------------------------------------

@pytest.mark.parametrize("service", SERVICES)
def test_haproxy_sends_proxy_to_off_listener(tmp_path, service):
    with Postern(tmp_path / "p") as s:   # all three listeners, proxy_protocol = "off"
        with HAProxy(tmp_path / "h", [Route(service, s.ports[service], "send-proxy-v2")]) as h:
            r = doctor(s, *through(service, h.ports[service]))
        assert r.returncode == 1, r.stdout + r.stderr
        lines = lines_of(r)
        assert len(lines) == 3
        expected = (f"FAIL {service} 127.0.0.1:{h.ports[service]}: the load balancer sends PROXY headers but "
                    f"listener '{service}' (port {s.ports[service]}) has proxy_protocol = \"off\"; "
                    f"fix: set proxy_protocol = \"required\" on it or stop sending PROXY headers")
        assert expected in lines
        # The listeners without --through were checked directly and are fine.
        assert sum(1 for line in lines if OK_LINE.match(line)) == 2
        s.wait_event("proxy.unexpected_header", listener=service)


# HAProxy's connections come from 127.0.0.1: trusted by default, untrusted with this list.
UNTRUSTED_TOML = '[proxy_protocol]\nheader_timeout = "1s"\ntrusted_networks = ["127.0.0.2/32"]'
DISAGREEMENTS = {
    # mode, balancer trusted?, what HAProxy sends: the reason doctor must give
    ("required", True, ""): "the load balancer is not sending PROXY headers but listener '{svc}' (port {port}) has "
                            "proxy_protocol = \"required\"; fix: make it send them (HAProxy: send-proxy-v2",
    ("required", False, "send-proxy-v2"): "listener '{svc}' (port {port}) refuses the load balancer's PROXY headers: "
                                          "its address is not in trusted_networks; fix: add the load balancer's",
    ("mixed", True, ""): "the load balancer's address is in trusted_networks of listener '{svc}' (port {port}, "
                         "proxy_protocol = \"mixed\") but it is not sending PROXY headers; fix: make it send them",
    ("mixed", False, "send-proxy-v2"): "the load balancer sends PROXY headers but its address is not in "
                                       "trusted_networks of listener '{svc}' (port {port}, proxy_protocol = "
                                       "\"mixed\"); fix: add the load balancer's address to trusted_networks",
}


@pytest.mark.parametrize("mode,trusted,send_proxy", list(DISAGREEMENTS))
def test_haproxy_and_listener_disagree(tmp_path, mode, trusted, send_proxy):
    """Both kinds of listener: on smtp the greeting never comes, on submissions the ClientHello
    is refused at once; either way doctor must say which side is wrong and how."""
    services = ("smtp", "submissions")
    with Postern(tmp_path / "p", listeners=[(svc, mode) for svc in services],
                 proxy_toml=PROXY_TOML if trusted else UNTRUSTED_TOML) as s:
        with HAProxy(tmp_path / "h", [Route(svc, s.ports[svc], send_proxy) for svc in services]) as h:
            r = doctor(s, *[a for svc in services for a in through(svc, h.ports[svc])])
        assert r.returncode == 1, r.stdout + r.stderr
        for svc, line in zip(services, lines_of(r)):
            reason = DISAGREEMENTS[(mode, trusted, send_proxy)].format(svc=svc, port=s.ports[svc])
            assert line.startswith(f"FAIL {svc} 127.0.0.1:{h.ports[svc]}: {reason}"), line


def test_haproxy_with_send_proxy_v2_to_required_listener_is_ok(tmp_path):
    listeners = [(svc, "required") for svc in SERVICES]
    with Postern(tmp_path / "p", listeners=listeners) as s:
        with HAProxy(tmp_path / "h", [Route(svc, s.ports[svc], "send-proxy-v2") for svc in SERVICES]) as h:
            args = [a for svc in SERVICES for a in through(svc, h.ports[svc])]
            r = doctor(s, *args)
        assert r.returncode == 0, r.stdout + r.stderr
        for svc, line in zip(SERVICES, lines_of(r)):
            m = OK_LINE.match(line)
            assert m and m.group(1) == svc and m.group(2) == f"127.0.0.1:{h.ports[svc]}", line


# Nothing there ------------------------------------------------------------------------------

def test_postern_not_running(tmp_path):
    s = Postern(tmp_path / "p", listeners=[("smtp", "off"), ("submissions", "off")])   # never started
    with HAProxy(tmp_path / "h", [Route("submissions", s.ports["submissions"], send_proxy="")]) as h:
        r = doctor(s, *through("submissions", h.ports["submissions"]))
    assert r.returncode == 1
    smtp, submissions = lines_of(r)
    assert smtp == (f"FAIL smtp 127.0.0.1:{s.ports['smtp']}: connection refused; fix: is postern running? Start it "
                    f"(postern serve) and check that listener 'smtp' has address 127.0.0.1:{s.ports['smtp']}")
    assert submissions.startswith(f"FAIL submissions 127.0.0.1:{h.ports['submissions']}: the load balancer closed the "
                                  f"connection, and nothing accepts connections on 127.0.0.1:{s.ports['submissions']}")
    assert "is postern running?" in submissions


class _AuthBeforeTls(threading.Thread):
    """A one-connection SMTP server that offers AUTH in plaintext (what doctor must catch)."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_server(("127.0.0.1", port))

    def run(self):
        conn, _ = self.sock.accept()
        with conn, conn.makefile("rb") as f:
            conn.sendall(b"220 other.example ESMTP\r\n")
            for line in f:
                verb = line.split()[0].upper() if line.split() else b""
                if verb == b"EHLO":
                    conn.sendall(b"250-other.example\r\n250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n")
                elif verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    break
                else:
                    conn.sendall(b"502 no\r\n")
        self.sock.close()


def test_auth_offered_before_tls(tmp_path):
    s = Postern(tmp_path / "p", listeners=[("submission", "off")])   # its port is taken by the impostor
    fake = _AuthBeforeTls(s.ports["submission"])
    fake.start()
    r = doctor(s)
    assert r.returncode == 1
    line = lines_of(r)[0]
    assert line.startswith(f"FAIL submission 127.0.0.1:{s.ports['submission']}: AUTH is offered before TLS"), line
    assert "; fix: " in line
    fake.join(timeout=10)


# Arguments ---------------------------------------------------------------------------------

def test_through_arguments(tmp_path):
    s = Postern(tmp_path / "p")   # three listeners, not started
    closed = free_port()
    r = doctor(s, "--through", f"127.0.0.1:{closed}")
    assert r.returncode == 2 and r.stdout == ""
    assert "does not say which listener" in r.stderr and "smtp, submission, submissions" in r.stderr
    r = doctor(s, "--through", f"imap=127.0.0.1:{closed}")
    assert r.returncode == 2 and "there is no listener 'imap'" in r.stderr
    r = doctor(s, *through("smtp", closed), *through("smtp", closed))
    assert r.returncode == 2 and "two --through addresses" in r.stderr
    r = doctor(s, "--through", "submission=::1:587")
    assert r.returncode == 2 and "brackets" in r.stderr
    # One listener: a bare HOST:PORT is enough; "smtps" is the old name of "submissions".
    one = Postern(tmp_path / "one", listeners=[("submissions", "off")])
    r = doctor(one, "--through", f"127.0.0.1:{closed}")
    assert r.returncode == 1
    assert lines_of(r) == [f"FAIL submissions 127.0.0.1:{closed}: connection refused by the load balancer; fix: "
                           f"check that the load balancer runs and has a frontend on 127.0.0.1:{closed}"]
    r = doctor(one, "--through", f"smtps=127.0.0.1:{closed}")
    assert r.returncode == 1 and lines_of(r)[0].startswith(f"FAIL submissions 127.0.0.1:{closed}: ")


def test_bad_ca_file(server, tmp_path):
    missing = tmp_path / "missing.pem"
    r = subprocess.run([BIN, "doctor", "--config", str(server.config_path), "--ca", str(missing)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and str(missing) in r.stderr and r.stdout == ""
