"""Issue 4: TLS with openssl s_client and sslscan: protocol floor, ciphers, SNI,
certificate reload without restart, STARTTLS injection, config check of certificates."""

import datetime
import os
import re
import smtplib
import socket
import ssl
import subprocess

import pytest

from harness import BIN, Postern, make_cert, wait_until


def s_client(port, *args, servername=None, starttls=False, timeout=20):
    cmd = ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-showcerts"]
    if servername:
        cmd += ["-servername", servername]
    if starttls:
        cmd += ["-starttls", "smtp"]
    cmd += list(args)
    return subprocess.run(cmd, input="QUIT\n", capture_output=True, text=True, timeout=timeout)


def served_cert(result):
    m = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", result.stdout, re.S)
    assert m, result.stdout + result.stderr
    info = subprocess.run(["openssl", "x509", "-noout", "-subject", "-serial"], input=m.group(0),
                          capture_output=True, text=True, check=True).stdout
    subject = re.search(r"subject=(.*)", info).group(1).strip()
    serial = re.search(r"serial=(\w+)", info).group(1)
    return subject, serial


def ctx():
    c = ssl.create_default_context()
    c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
    return c


@pytest.fixture
def tls_server(tmp_path):
    certs = tmp_path / "extra"
    other_cert, other_key = make_cert(certs, cn="mx.other.test", names=("mx.other.test", "*.wild.test"))
    extra = f'[[tls.certificate]]\ncert = "{other_cert}"\nkey = "{other_key}"\n'
    with Postern(tmp_path / "p", extra_toml=extra) as s:
        yield s


def test_implicit_tls_and_starttls(tls_server):
    s = tls_server
    r = s_client(s.ports["submissions"])
    assert served_cert(r)[0] == "CN = mail.example.test"
    assert re.search(r"(New|Reused), TLSv1\.[23], Cipher is", r.stdout), r.stdout
    for service in ("submission", "smtp"):
        r = s_client(s.ports[service], starttls=True)
        assert served_cert(r)[0] == "CN = mail.example.test", service


def test_sni_selects_certificate_from_san_names(tls_server):
    s = tls_server
    assert served_cert(s_client(s.ports["submissions"], servername="mx.other.test"))[0] == "CN = mx.other.test"
    assert served_cert(s_client(s.ports["submissions"], servername="imap.wild.test"))[0] == "CN = mx.other.test"
    assert served_cert(s_client(s.ports["submissions"], servername="unknown.test"))[0] == "CN = mail.example.test"
    r = s_client(s.ports["submission"], servername="mx.other.test", starttls=True)
    assert served_cert(r)[0] == "CN = mx.other.test"


@pytest.mark.parametrize("flag", ["-tls1", "-tls1_1"])
def test_old_protocols_refused(server, flag):
    # The client is allowed to try (SECLEVEL=0); the server must refuse.
    r = s_client(server.ports["submissions"], flag, "-cipher", "DEFAULT@SECLEVEL=0")
    assert "BEGIN CERTIFICATE" not in r.stdout
    ev = server.wait_event("tls.handshake_failed", listener="submissions")
    assert "unsupported protocol" in ev["reason"], ev


def test_weak_and_non_forward_secret_ciphers_refused(server):
    for cipher in ("AES128-SHA", "AES256-GCM-SHA384", "DES-CBC3-SHA"):
        r = s_client(server.ports["submissions"], "-tls1_2", "-cipher", cipher + ":@SECLEVEL=0")
        assert "BEGIN CERTIFICATE" not in r.stdout, cipher
    ev = server.wait_event("tls.handshake_failed")
    assert "no shared cipher" in ev["reason"], ev


def test_sslscan_reports_only_modern_protocols_and_strong_ciphers(server):
    r = subprocess.run(["sslscan", "--no-colour", f"127.0.0.1:{server.ports['submissions']}"], capture_output=True,
                       text=True, timeout=120)
    out = r.stdout
    for proto in ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"):
        assert re.search(rf"^{re.escape(proto)}\s+disabled", out, re.M), out
    accepted = re.findall(r"^(?:Preferred|Accepted)\s+(TLSv1\.[23])\s+(\d+) bits\s+(\S+)", out, re.M)
    assert accepted, out
    for proto, bits, cipher in accepted:
        assert int(bits) >= 128, (proto, bits, cipher)
        assert proto == "TLSv1.3" or cipher.startswith("ECDHE-"), cipher   # forward secrecy
    assert "Session renegotiation not supported" in out or "renegotiation" not in out.lower()


def _replace(path_cert, path_key, new_cert, new_key, how):
    if how == "rename":
        tmp_c, tmp_k = str(path_cert) + ".new", str(path_key) + ".new"
        open(tmp_c, "wb").write(open(new_cert, "rb").read())
        open(tmp_k, "wb").write(open(new_key, "rb").read())
        os.rename(tmp_k, path_key)
        os.rename(tmp_c, path_cert)
    else:
        # In place: key first, then certificate (the window in between must not break serving).
        with open(path_key, "r+b") as f:
            data = open(new_key, "rb").read()
            f.seek(0), f.write(data), f.truncate()
        with open(path_cert, "r+b") as f:
            data = open(new_cert, "rb").read()
            f.seek(0), f.write(data), f.truncate()


@pytest.mark.parametrize("how", ["rename", "in_place"])
def test_certificate_reload_without_restart(tmp_path, how):
    with Postern(tmp_path / "p") as s:
        port = s.ports["submissions"]
        _, old_serial = served_cert(s_client(port))
        session = smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=ctx())
        session.ehlo("open-before-reload")
        new_cert, new_key = make_cert(tmp_path / "renewed", serial=0x5EED0001)
        _replace(s.cert, s.key, new_cert, new_key, how)
        wait_until(lambda: served_cert(s_client(port))[1] != old_serial, timeout=15, interval=0.2,
                   what="the new certificate to be served")
        assert served_cert(s_client(port))[1] == "5EED0001"
        # The session opened before the reload carries on.
        assert session.noop()[0] == 250
        session.login("alice@example.test", "alice-secret-1")
        session.sendmail("alice@example.test", ["bob@example.test"], b"Subject: across reload\r\n\r\nhi\r\n")
        session.quit()
        s.wait_mail("bob@example.test")
        assert s.proc.poll() is None


def test_broken_replacement_keeps_old_certificate(tmp_path):
    with Postern(tmp_path / "p") as s:
        port = s.ports["submissions"]
        _, old_serial = served_cert(s_client(port))
        other_cert, _ = make_cert(tmp_path / "other", cn="other")   # key will not match
        s.cert.write_bytes(other_cert.read_bytes())
        ev = s.wait_event("tls.reload_failed", timeout=15)
        assert "does not match" in ev["reason"] and str(s.key) in ev["reason"]
        assert served_cert(s_client(port))[1] == old_serial
        s.cert.write_text("-----BEGIN CERTIFICATE-----\ntruncated")
        wait_until(lambda: len(s.log_events("tls.reload_failed")) >= 2, timeout=15, what="second reload failure")
        assert served_cert(s_client(port))[1] == old_serial


def test_sighup_reloads(tmp_path):
    import signal
    with Postern(tmp_path / "p") as s:
        s.proc.send_signal(signal.SIGHUP)
        s.wait_event("tls.reloaded", trigger="SIGHUP")
        s.wait_event("directory.reloaded")


def test_starttls_injection_is_not_answered(server):
    sock = socket.create_connection(("127.0.0.1", server.ports["submission"]), timeout=10)
    f = sock.makefile("rb")
    assert f.readline().startswith(b"220")
    sock.sendall(b"EHLO x\r\n")
    while f.readline()[3:4] == b"-":
        pass
    sock.sendall(b"STARTTLS\r\nRSET\r\n")
    assert f.readline().startswith(b"220 2.0.0")
    tls = ctx().wrap_socket(sock, server_hostname="mail.example.test")
    tls.settimeout(2)
    tls.sendall(b"NOOP\r\n")
    reply = tls.recv(1000)
    # The first reply inside TLS answers NOOP; the pipelined RSET was discarded.
    assert reply.startswith(b"250 2.0.0 Ok") and reply.count(b"\r\n") == 1, reply
    server.wait_event("smtp.starttls_injection")
    # EHLO is required again after STARTTLS; AUTH is offered now.
    tls.sendall(b"EHLO x\r\n")
    ehlo = tls.recv(2000)
    assert b"AUTH PLAIN LOGIN" in ehlo and b"STARTTLS" not in ehlo
    tls.close()


def test_plaintext_on_tls_port_is_explained(server):
    sock = socket.create_connection(("127.0.0.1", server.ports["submissions"]), timeout=10)
    sock.sendall(b"EHLO plaintext\r\n")
    sock.settimeout(5)
    try:
        sock.recv(100)
    except OSError:
        pass
    sock.close()
    ev = server.wait_event("tls.handshake_failed", listener="submissions")
    assert "wrong version number" in ev["reason"] or "http" in ev["reason"]
    assert "plaintext" in ev["hint"]


def _cert_with_dates(directory, name, not_before, not_after):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    c, k = directory / f"{name}.pem", directory / f"{name}.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    return c, k


def _check(tmp_path, cert, key):
    (tmp_path / "accounts.cf").write_text("")
    cfg = tmp_path / "postern.toml"
    cfg.write_text(f'hostname = "mail.example.test"\ndata_dir = "d"\n[directory]\naccounts = "accounts.cf"\n'
                   f'[tls]\ncert = "{cert}"\nkey = "{key}"\n'
                   '[[listener]]\nservice = "submissions"\naddress = "127.0.0.1:4650"\n')
    return subprocess.run([BIN, "config", "check", "--config", str(cfg)], capture_output=True, text=True), str(cfg)


def test_config_check_certificates(tmp_path):
    now = datetime.datetime.now(datetime.timezone.utc)
    good_c, good_k = make_cert(tmp_path / "good")
    r, cfg = _check(tmp_path, good_c, good_k)
    assert r.returncode == 0 and f"{cfg}:5:1: note: certificate" in r.stderr and "mail.example.test" in r.stderr
    assert "days left" in r.stderr
    other_c, other_k = make_cert(tmp_path / "other", cn="other")
    r, cfg = _check(tmp_path, good_c, other_k)
    assert r.returncode == 1 and f"{cfg}:5:1: error: key '{other_k}' does not match certificate" in r.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    r, _ = _check(tmp_path, junk, good_k)
    assert r.returncode == 1 and "holds no PEM certificate" in r.stderr
    c, k = _cert_with_dates(tmp_path / "old", "expired.test", now - datetime.timedelta(days=100),
                            now - datetime.timedelta(days=1))
    r, _ = _check(tmp_path, c, k)
    assert r.returncode == 1 and "has expired" in r.stderr
    c, k = _cert_with_dates(tmp_path / "soon", "soon.test", now - datetime.timedelta(days=80),
                            now + datetime.timedelta(days=5, hours=1))
    r, _ = _check(tmp_path, c, k)
    assert r.returncode == 0 and "warning: certificate" in r.stderr and "expires in 5 days" in r.stderr
