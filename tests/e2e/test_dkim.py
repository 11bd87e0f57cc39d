"""Issue 12 item 5: DKIM signing at acceptance. `postern dkim keygen` writes the key and
prints the DNS record; mail submitted with AUTH lands signed and an independent verifier
(Debian's python3-dkim) accepts the signature against exactly that record, for RSA and
Ed25519; a message changed after signing fails; unauthenticated mail is never signed;
docker-mailserver's opendkim key folder is used as it is."""

import base64
import os
import re
import signal
import smtplib
import socket
import ssl
import stat
import subprocess

import dkim
import pytest

from harness import Postern

RECORD = re.compile(r'^(?P<name>\S+\._domainkey\.\S+\.) IN TXT(?P<strings>( "[^"]{1,255}")+)$')


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_record(line):
    """(owner name, TXT value) of a keygen line; asserts its shape."""
    m = RECORD.match(line)
    assert m, f"not a zone-file TXT line: {line!r}"
    strings = re.findall(r'"([^"]*)"', m.group("strings"))
    assert all(len(s) <= 255 for s in strings)
    return m.group("name"), "".join(strings)


def dns_from(records):
    """A dnsfunc for dkim.verify answering from {owner name: TXT value}."""
    def lookup(name, timeout=5):
        value = records.get(name.decode() if isinstance(name, bytes) else name)
        return value.encode() if value is not None else None
    return lookup


def message(sender="alice@example.test", subject="signed hello", body=b"Hello Bob,\r\n\r\nsee you.  \r\n"):
    return (f"From: Alice <{sender}>\r\n"
            f"To: Bob <bob@example.test>\r\n"
            f"Subject: {subject}\r\n"
            f"Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@example.test>\r\n"
            f"MIME-Version: 1.0\r\n"
            f"Content-Type: text/plain; charset=us-ascii\r\n"
            f"\r\n").encode() + body


def submit(server, msg, user="alice@example.test", password="alice-secret-1", rcpt="bob@example.test"):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=30) as c:
        c.ehlo("laptop")
        c.starttls(context=tls_context())
        c.ehlo("laptop")
        c.login(user, password)
        c.sendmail(user, [rcpt], msg)


def keygen(server, *args):
    r = server.cli("dkim", "keygen", *args)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    return parse_record(lines[0])


def test_keygen_record_and_file_modes(tmp_path):
    s = Postern(tmp_path / "postern")
    name, value = keygen(s, "example.test")
    assert name == "mail._domainkey.example.test."
    assert value.startswith("v=DKIM1; k=rsa; p=MII")
    key = s.dir / "dkim" / "example.test" / "mail.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    # RSA 2048: the public key does not fit one 255-byte string.
    assert len(value) > 255
    line = s.cli("dkim", "keygen", "example.test", check=False)
    assert line.returncode != 0 and "refusing to overwrite" in line.stderr
    assert key.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")

    name, value = keygen(s, "Example.ORG", "--selector", "ed1", "--type", "ed25519")
    assert name == "ed1._domainkey.example.org."
    assert re.fullmatch(r"v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=", value)
    assert (s.dir / "dkim" / "example.org" / "ed1.key").exists()

    for bad in (["--type", "dsa"], ["--bits", "512"], ["--type", "ed25519", "--bits", "2048"]):
        r = s.cli("dkim", "keygen", "example.net", *bad, check=False)
        assert r.returncode != 0 and r.stderr, bad
    assert not (s.dir / "dkim" / "example.net").exists()


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_submitted_mail_is_signed_and_verifies(tmp_path, key_type):
    s = Postern(tmp_path / "postern")
    name, value = keygen(s, "example.test", "--type", key_type)
    dnsfunc = dns_from({name: value})
    with s:
        s.wait_event("dkim.key_loaded", domain="example.test", selector="mail", type=key_type)
        submit(s, message())
        path = s.wait_mail("bob@example.test")[0]
        ev = s.wait_event("smtp.accepted", user="alice@example.test")
    assert ev["dkim"] == "signed" and ev["d"] == "example.test" and ev["s"] == "mail"
    stored = path.read_bytes()   # the Maildir copy: LF line ends, Return-Path and Delivered-To on top
    header = stored.split(b"\n\n", 1)[0].split(b"\n")
    names = [line.split(b":", 1)[0] for line in header if not line.startswith((b" ", b"\t"))]
    # The signature sits above our Received: (added at acceptance, before the spool).
    assert names.index(b"DKIM-Signature") + 1 == names.index(b"Received"), names
    first = next(line for line in header if line.startswith(b"DKIM-Signature:"))
    assert first.startswith(b"DKIM-Signature: v=1; a=" + (b"rsa-sha256" if key_type == "rsa" else b"ed25519-sha256"))
    start = header.index(first)
    field = [first] + [line for line in header[start + 1:]][:20]
    field = field[:1 + next(i for i, line in enumerate(field[1:] + [b"X"]) if not line.startswith(b"\t"))]
    assert all(len(line.expandtabs(8)) <= 78 for line in field), field
    assert b"h=From:From:" in b"".join(line.strip() for line in field)
    assert dkim.verify(stored, dnsfunc=dnsfunc), "python3-dkim rejects the signature"
    sig = dkim.DKIM(stored)
    assert sig.verify(dnsfunc=dnsfunc)
    # From is oversigned: a second From added in transit breaks the signature.
    assert not dkim.verify(stored.replace(b"\nTo: ", b"\nFrom: mallory@evil.test\nTo: ", 1), dnsfunc=dnsfunc)
    # A changed body or a changed signed header fails.
    assert not dkim.verify(stored.replace(b"see you.", b"see YOU."), dnsfunc=dnsfunc)
    assert not dkim.verify(stored.replace(b"Subject: signed hello", b"Subject: signed HELLO"), dnsfunc=dnsfunc)


def test_large_submission_is_held_and_signed(tmp_path):
    """A message larger than the spill threshold (1 MiB) is still signed whole."""
    s = Postern(tmp_path / "postern")
    name, value = keygen(s, "example.test", "--type", "ed25519")
    body = b"".join(b"line %06d of a long message   \r\n" % i for i in range(80_000))
    with s:
        submit(s, message(subject="big one", body=body))
        path = s.wait_mail("bob@example.test", timeout=30)[0]
        s.wait_event("smtp.accepted", user="alice@example.test", dkim="signed")
    assert dkim.verify(path.read_bytes(), dnsfunc=dns_from({name: value}))


def test_unauthenticated_inbound_is_not_signed(tmp_path):
    s = Postern(tmp_path / "postern")
    keygen(s, "example.test")
    with s:
        # Claims to be from a local domain, but nobody authenticated: never signed.
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
            c.sendmail("alice@example.test", ["bob@example.test"], message(subject="spoofed"))
        path = s.wait_mail("bob@example.test")[0]
        ev = s.wait_event("smtp.accepted", to="bob@example.test")
    assert "dkim" not in ev
    assert b"DKIM-Signature" not in path.read_bytes()


def test_from_domain_without_key_is_not_signed(tmp_path):
    s = Postern(tmp_path / "postern", accounts={"alice@example.test": "alice-secret-1",
                                                "bob@example.test": "bob-secret-2",
                                                "carol@other.test": "carol-secret-3"})
    keygen(s, "example.test")
    with s:
        submit(s, message(sender="carol@other.test"), user="carol@other.test", password="carol-secret-3")
        path = s.wait_mail("bob@example.test")[0]
    assert b"DKIM-Signature" not in path.read_bytes()


def test_broken_key_is_logged_and_mail_accepted_unsigned(tmp_path):
    s = Postern(tmp_path / "postern", extra_toml='[dkim]\nkeys = "keys"')
    bad = s.dir / "keys" / "example.test" / "mail.key"
    bad.parent.mkdir(parents=True)
    bad.write_text("-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with s:
        ev = s.wait_event("dkim.key_failed", file=str(bad))
        assert ev["reason"] and ev["status"] == "unsigned"
        submit(s, message())
        path = s.wait_mail("bob@example.test")[0]
    assert b"DKIM-Signature" not in path.read_bytes()


def test_docker_mailserver_opendkim_folder_as_it_is(tmp_path):
    """docker-mailserver's config/opendkim/ (what `setup config dkim` leaves): keys/<domain>/
    mail.private (a PKCS#1 RSA key, as opendkim-genkey writes), KeyTable and SigningTable
    naming the container's /etc/opendkim/keys paths, and mail.txt beside the key."""
    dms = tmp_path / "dms" / "config" / "opendkim"
    keydir = dms / "keys" / "example.test"
    keydir.mkdir(parents=True)
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(keydir / "mail.private"), "2048"],
                   check=True, capture_output=True)
    os.chmod(keydir / "mail.private", 0o600)
    assert (keydir / "mail.private").read_text().startswith("-----BEGIN RSA PRIVATE KEY-----")
    der = subprocess.run(["openssl", "rsa", "-in", str(keydir / "mail.private"), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    public = base64.b64encode(der).decode()
    (keydir / "mail.txt").write_text(f'mail._domainkey\tIN\tTXT\t( "v=DKIM1; h=sha256; k=rsa; "\n\t  "p={public}" )\n')
    (dms / "KeyTable").write_text(
        "mail._domainkey.example.test example.test:mail:/etc/opendkim/keys/example.test/mail.private\n")
    (dms / "SigningTable").write_text("*@example.test mail._domainkey.example.test\n")
    (dms / "TrustedHosts").write_text("127.0.0.1\nlocalhost\n")

    s = Postern(tmp_path / "postern", extra_toml=f'[dkim]\nkeys = "{dms}"')
    with s:
        s.wait_event("dkim.key_loaded", domain="example.test", file=str(keydir / "mail.private"))
        submit(s, message(subject="from dms"))
        path = s.wait_mail("bob@example.test")[0]
    records = {"mail._domainkey.example.test.": f"v=DKIM1; h=sha256; k=rsa; p={public}"}
    assert dkim.verify(path.read_bytes(), dnsfunc=dns_from(records))


def test_sighup_loads_a_key_made_while_running(tmp_path):
    s = Postern(tmp_path / "postern")
    with s:
        s.wait_event("dkim.keys", trigger="start", domains="0")
        name, value = keygen(s, "example.test", "--type", "ed25519")
        s.proc.send_signal(signal.SIGHUP)
        s.wait_event("dkim.key_loaded", trigger="SIGHUP", domain="example.test")
        submit(s, message(subject="after reload"))
        path = s.wait_mail("bob@example.test")[0]
    assert dkim.verify(path.read_bytes(), dnsfunc=dns_from({name: value}))


def test_bdat_submission_is_signed(tmp_path):
    """CHUNKING (RFC 3030): a message sent in BDAT chunks, larger than the 1 MiB spill
    threshold, over implicit TLS after AUTH, is signed whole."""
    s = Postern(tmp_path / "postern")
    name, value = keygen(s, "example.test", "--type", "ed25519")
    msg = message(subject="in chunks", body=b"".join(b"chunked line %06d\r\n" % i for i in range(70_000)))
    with s:
        raw = socket.create_connection(("127.0.0.1", s.ports["submissions"]), timeout=30)
        with tls_context().wrap_socket(raw) as c:
            f = c.makefile("rb")

            def reply():
                while True:
                    line = f.readline()
                    if line[3:4] != b"-":
                        return line

            assert reply().startswith(b"220")
            c.sendall(b"EHLO laptop\r\n")
            assert reply().startswith(b"250")
            c.sendall(b"AUTH PLAIN " + base64.b64encode(b"\0alice@example.test\0alice-secret-1") + b"\r\n")
            assert reply().startswith(b"235")
            c.sendall(b"MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n")
            assert reply().startswith(b"250") and reply().startswith(b"250")
            half = len(msg) // 2
            c.sendall(b"BDAT %d\r\n" % half + msg[:half])
            assert reply().startswith(b"250")
            c.sendall(b"BDAT %d LAST\r\n" % (len(msg) - half) + msg[half:])
            assert reply().startswith(b"250")
            c.sendall(b"QUIT\r\n")
        path = s.wait_mail("bob@example.test", timeout=30)[0]
        s.wait_event("smtp.accepted", user="alice@example.test", dkim="signed")
    assert dkim.verify(path.read_bytes(), dnsfunc=dns_from({name: value}))


def test_unsignable_message_is_accepted_unsigned_with_a_warning(tmp_path):
    """A header section a verifier would split differently (a line that is no field) is not
    signed; the message is still accepted, and the log says why."""
    s = Postern(tmp_path / "postern")
    keygen(s, "example.test", "--type", "ed25519")
    broken = b"From: alice@example.test\r\nTo: bob@example.test\r\nthis line is no header field\r\n\r\nbody\r\n"
    with s:
        submit(s, broken)
        path = s.wait_mail("bob@example.test")[0]
        warn = s.wait_event("dkim.sign_failed", d="example.test")
        ev = s.wait_event("smtp.accepted", user="alice@example.test")
    assert warn["status"] == "accepted_unsigned" and warn["reason"]
    assert ev["dkim"] == "failed"
    assert b"DKIM-Signature" not in path.read_bytes()


def test_awkward_message_verifies(tmp_path):
    """Canonicalization corners a real client produces: folded and duplicate fields, odd
    name case, tabs and trailing blanks, trailing empty lines, 8-bit text, long lines."""
    s = Postern(tmp_path / "postern")
    name, value = keygen(s, "example.test")
    msg = ("from:   \"Alice \t Example\" \r\n\t<alice@example.test>  \r\n"
           "TO: bob@example.test\r\n"
           "Cc: first@example.test,\r\n  \tsecond@example.test\r\n"
           "Subject: a subject that is long enough to be folded by a client that folds\r\n"
           " at seventy-eight columns\t \r\n"
           "Date: Mon, 1 Jan 2024 10:00:00 +0000\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n"
           "X-Unsigned: not in h=\r\n"
           "\r\n"
           "  leading blanks\t\tand tabs   \r\n"
           "caf\u00e9 \u00fcber \r\n"
           "\t\r\n"
           + "x" * 900 + "\r\n"
           "\r\n\r\n   \r\n").encode()
    with s:
        submit(s, msg)
        path = s.wait_mail("bob@example.test")[0]
    stored = path.read_bytes()
    dnsfunc = dns_from({name: value})
    assert dkim.verify(stored, dnsfunc=dnsfunc)
    # Unsigned fields may change; relaxed canonicalization ignores re-folding and blanks.
    assert dkim.verify(stored.replace(b"X-Unsigned: not in h=", b"X-Unsigned: changed"), dnsfunc=dnsfunc)
    assert dkim.verify(stored.replace(b"TO: bob@example.test", b"To:    bob@example.test  "), dnsfunc=dnsfunc)
    assert not dkim.verify(stored.replace(b"TO: bob@example.test", b"TO: eve@example.test"), dnsfunc=dnsfunc)
