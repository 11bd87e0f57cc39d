"""Issue 2: receiving over SMTP, submission (STARTTLS + AUTH) and submissions (implicit
TLS + AUTH), policy replies, and the message on disk byte for byte."""

import smtplib
import socket
import ssl
import subprocess
from pathlib import Path

import pytest

from harness import wait_until


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


MESSAGE = (b"From: Sender <sender@remote.test>\r\n"
           b"To: Alice <alice@example.test>\r\n"
           b"Subject: hello\r\n"
           b"\r\n"
           b"First line\r\n"
           b".leading dot survives\r\n"
           b"Last line\r\n")


def test_plain_smtp_delivers_byte_for_byte(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        code, _ = c.ehlo("client.remote.test")
        assert code == 250
        assert "PIPELINING" in c.esmtp_features or "pipelining" in c.esmtp_features
        assert "auth" not in c.esmtp_features, "AUTH must not be offered without TLS"
        assert "starttls" in c.esmtp_features
        c.sendmail("sender@remote.test", ["alice@example.test"], MESSAGE)
    files = server.wait_mail("alice@example.test")
    data = files[0].read_bytes()
    lines = data.split(b"\n")
    assert lines[0] == b"Return-Path: <sender@remote.test>"
    assert lines[1] == b"Delivered-To: alice@example.test"
    # [verify] is on by default: our Authentication-Results field (folded) is on top.
    assert lines[2].startswith(b"Authentication-Results: mail.example.test;")
    i = 3
    while lines[i][:1] in (b" ", b"\t"):
        i += 1
    assert lines[i].startswith(b"Received: from client.remote.test ([127.0.0.1])")
    # The client's message follows the trace headers unchanged (CRLF stored as LF).
    body = MESSAGE.replace(b"\r\n", b"\n")
    assert data.endswith(body)
    header_block = data[: len(data) - len(body)]
    assert b"by mail.example.test (Postern) with ESMTP id " in header_block
    assert b"for <alice@example.test>;" in header_block
    # Maildir name: <secs>.M<usecs>P<pid>Q<n>.<host>,S=<size>
    name = files[0].name
    import re
    m = re.fullmatch(r"(\d+)\.M(\d+)P(\d+)Q(\d+)\.mail\.example\.test,S=(\d+)", name)
    assert m, name
    assert int(m.group(5)) == len(data)
    ev = server.wait_event("smtp.accepted", to="alice@example.test")
    assert ev["client"].startswith("127.0.0.1:")
    assert ev["status"] == "queued" and ev["from"] == "sender@remote.test"
    assert int(ev["size"]) > len(MESSAGE)


def test_submission_starttls_auth(server):
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.ehlo("laptop")
        assert "auth" not in c.esmtp_features
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("alice@example.test", ["bob@example.test"], MESSAGE)
        assert e.value.smtp_code == 530
        c.starttls(context=tls_context())
        c.ehlo("laptop")
        assert "PLAIN" in c.esmtp_features["auth"] and "LOGIN" in c.esmtp_features["auth"]
        c.login("alice@example.test", "alice-secret-1")
        c.sendmail("alice@example.test", ["bob@example.test", "someone@remote.test"], MESSAGE)
    server.wait_mail("bob@example.test")
    ev = server.wait_event("smtp.accepted", user="alice@example.test")
    assert ev["tls"].startswith("TLSv1.")
    # The remote recipient is deferred (kept), never dropped.
    server.wait_event("delivery.deferred", to="someone@remote.test")
    received = server.maildir("bob@example.test")[0].read_bytes()
    assert b"with ESMTPSA" in received and b"(authenticated sender: alice@example.test)" in received


def test_submissions_implicit_tls_auth_login(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], timeout=10, context=tls_context()) as c:
        c.ehlo("laptop")
        assert "auth" in c.esmtp_features
        assert "starttls" not in c.esmtp_features
        c.user, c.password = "bob@example.test", "bob-secret-2"
        code, _ = c.auth("LOGIN", c.auth_login, initial_response_ok=False)
        assert code == 235
        c.sendmail("bob@example.test", ["alice@example.test"], MESSAGE)
    server.wait_mail("alice@example.test")


def test_wrong_password_and_spoofed_sender(server):
    with smtplib.SMTP_SSL("127.0.0.1", server.ports["submissions"], timeout=10, context=tls_context()) as c:
        c.ehlo("laptop")
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login("alice@example.test", "wrong")
        assert e.value.smtp_code == 535
        c.login("alice@example.test", "alice-secret-1")
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail("bob@example.test", ["alice@example.test"], MESSAGE)
        assert e.value.smtp_code == 553 and b"5.7.1" in e.value.smtp_error
        # An alias that maps to alice is hers to use.
        c.sendmail("postmaster@example.test", ["bob@example.test"], MESSAGE)
    server.wait_mail("bob@example.test")
    ev = server.wait_event("smtp.auth", status="failed")
    assert ev["user"] == "alice@example.test"


def test_relay_denied_and_unknown_user(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.ehlo("x")
        c.mail("sender@remote.test")
        code, msg = c.rcpt("victim@elsewhere.test")
        assert code == 554 and msg.startswith(b"5.7.1")
        code, msg = c.rcpt("nobody@example.test")
        assert code == 550 and msg.startswith(b"5.1.1")
        code, msg = c.rcpt("alice@example.test")
        assert code == 250
    ev = server.wait_event("smtp.rejected", code="554")
    assert ev["counter"] == "smtp.relay_denied"


def test_aliases_and_catch_all(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.sendmail("a@remote.test", ["team@example.test"], MESSAGE)
        c.sendmail("a@remote.test", ["whoever@catchall.test"], MESSAGE)
    server.wait_mail("alice@example.test", 1)
    server.wait_mail("bob@example.test", 2)
    contents = [p.read_bytes() for p in server.maildir("bob@example.test")]
    assert any(b"Delivered-To: bob@example.test" in c for c in contents)


def test_size_limit(tmp_path):
    from harness import Postern
    with Postern(tmp_path / "p", extra_toml='[smtp]\nmax_message_size = "10KiB"') as s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
            c.ehlo("x")
            assert c.esmtp_features["size"] == "10240"
            code, msg = c.mail("a@remote.test", ["SIZE=20000"])
            assert code == 552 and msg.startswith(b"5.3.4")
            big = MESSAGE + b"x" * 70 + b"\r\n"
            big = big * 200
            # Without a SIZE declaration the limit is enforced while reading DATA.
            assert c.mail("a@remote.test")[0] == 250
            assert c.rcpt("alice@example.test")[0] == 250
            code, msg = c.data(big)
            assert code == 552 and msg.startswith(b"5.3.4")
            # The session goes on after the rejection.
            c.sendmail("a@remote.test", ["alice@example.test"], MESSAGE)
        s.wait_mail("alice@example.test")
        assert len(s.maildir("alice@example.test")) == 1


def test_swaks_pipelining_and_bdat(server):
    base = ["swaks", "--server", "127.0.0.1", "--port", str(server.ports["smtp"]), "--from", "x@remote.test",
            "--to", "alice@example.test", "--helo", "swaks.test"]
    r = subprocess.run(base + ["--pipeline", "--header", "Subject: piped"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "<** " not in r.stdout
    server.wait_mail("alice@example.test", 1)
    # swaks has no BDAT support (test_bdat_raw covers CHUNKING); here it does STARTTLS + AUTH.
    sub = ["swaks", "--server", "127.0.0.1", "--port", str(server.ports["submission"]), "--tls",
           "--auth", "PLAIN", "--auth-user", "bob@example.test", "--auth-password", "bob-secret-2",
           "--from", "bob@example.test", "--to", "alice@example.test", "--pipeline"]
    r = subprocess.run(sub, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    server.wait_mail("alice@example.test", 2)


def test_bdat_raw(server):
    """RFC 3030 chunks over a raw socket, with a pipelined QUIT after the last chunk."""
    s = socket.create_connection(("127.0.0.1", server.ports["smtp"]), timeout=10)
    f = s.makefile("rb")
    assert f.readline().startswith(b"220 ")
    s.sendall(b"EHLO raw\r\n")
    lines = []
    while True:
        line = f.readline()
        lines.append(line)
        if line[3:4] == b" ":
            break
    assert any(b"CHUNKING" in l for l in lines)
    part1 = b"Subject: bdat\r\n\r\nchunk one\r\n"
    part2 = b"chunk two\r\n.not stuffed\r\n"
    s.sendall(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@example.test>\r\n" +
              b"BDAT %d\r\n" % len(part1) + part1 + b"BDAT %d LAST\r\n" % len(part2) + part2 + b"QUIT\r\n")
    replies = [f.readline() for _ in range(5)]
    assert replies[0].startswith(b"250") and replies[1].startswith(b"250")
    assert replies[2].startswith(b"250 2.0.0 %d octets" % len(part1))
    assert replies[3].startswith(b"250 2.0.0 Ok: queued as ")
    assert replies[4].startswith(b"221")
    s.close()
    data = server.wait_mail("bob@example.test")[0].read_bytes()
    assert data.endswith((part1 + part2).replace(b"\r\n", b"\n"))


def test_commands_and_sequence_errors(server):
    s = socket.create_connection(("127.0.0.1", server.ports["smtp"]), timeout=10)
    f = s.makefile("rb")
    f.readline()

    def cmd(line):
        s.sendall(line + b"\r\n")
        out = []
        while True:
            l = f.readline()
            out.append(l)
            if l[3:4] != b"-":
                return b"".join(out)

    assert cmd(b"MAIL FROM:<a@remote.test>").startswith(b"503 5.5.1")
    assert cmd(b"HELO there").startswith(b"250 ")
    assert cmd(b"NOOP").startswith(b"250 2.0.0")
    assert cmd(b"VRFY alice").startswith(b"252 ")
    assert cmd(b"HELP").startswith(b"214 ")
    assert cmd(b"RCPT TO:<alice@example.test>").startswith(b"503 5.5.1")
    assert cmd(b"DATA").startswith(b"503 5.5.1")
    assert cmd(b"FOO bar").startswith(b"500 5.5.2")
    assert cmd(b"MAIL FROM:<a@remote.test>").startswith(b"250 ")
    assert cmd(b"MAIL FROM:<a@remote.test>").startswith(b"503 5.5.1")
    assert cmd(b"RSET").startswith(b"250 ")
    assert cmd(b"MAIL FROM:<a@remote.test> FOO=BAR").startswith(b"555 5.5.4")
    assert cmd(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==").startswith(b"538 5.7.11")
    assert cmd(b"X" * 600).startswith(b"500 5.5.2")
    assert cmd(b"QUIT").startswith(b"221 ")
    s.close()


def test_recipient_limit(tmp_path):
    from harness import Postern
    with Postern(tmp_path / "p", extra_toml="[smtp]\nmax_recipients = 2") as s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
            c.ehlo("x")
            c.mail("a@remote.test")
            assert c.rcpt("alice@example.test")[0] == 250
            assert c.rcpt("bob@example.test")[0] == 250
            code, msg = c.rcpt("team@example.test")
            assert code == 452 and msg.startswith(b"4.5.3")


def test_plus_addressing_reaches_the_base_mailbox(server):
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        c.sendmail("a@remote.test", ["alice+newsletters@example.test"], MESSAGE)
        c.ehlo("x")
        c.mail("a@remote.test")
        code, msg = c.rcpt("nobody+tag@example.test")
        assert code == 550 and msg.startswith(b"5.1.1")
    data = server.wait_mail("alice@example.test")[0].read_bytes()
    assert b"Delivered-To: alice@example.test" in data and b"for <alice+newsletters@example.test>" in data


def test_threads_are_named_by_stage(server):
    """top -H / ps -L show which stage a thread is; the process name stays "postern" (the main
    thread's name is what ps, pgrep and killall match)."""
    task = Path(f"/proc/{server.proc.pid}/task")
    expected = ("postern-io1", "postern-spool", "postern-queue", "postern-deliv0", "postern-deliv1",
                "postern-cpu0", "postern-cpu1", "postern-log", "postern-smtpout", "postern-outfile", "postern-dns")
    # The I/O threads start last, after the listeners: wait for every name, not just one.
    names = wait_until(lambda: (n := sorted((t / "comm").read_text().strip() for t in task.iterdir()))
                       and all(e in n for e in expected) and n, timeout=5, what=f"threads named {expected}")
    assert Path(f"/proc/{server.proc.pid}/comm").read_text().strip() == "postern"
    # Every thread has a stage name: none is left unnamed besides the main one.
    assert names.count("postern") == 1, names
