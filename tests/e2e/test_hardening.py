"""Issue 5: the hardened SMTP front — SMTP smuggling variants, early talkers, slow-drip
clients, garbage floods with bounded memory, per-connection AUTH limits."""

import os
import socket
import ssl
import time

import pytest

from harness import Postern, wait_until, replies_until_close


def connect(port, source="127.0.0.1"):
    s = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))
    return s


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return b"".join(lines)
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


# Published SMTP smuggling end-of-data variants (SEC Consult 2023 and follow-ups).
SMUGGLING = {
    "lf_dot_lf": b"\n.\n",
    "lf_dot_crlf": b"\n.\r\n",
    "cr_dot_cr": b"\r.\r",
    "crlf_dot_lf": b"\r\n.\n",
    "crlf_dot_cr": b"\r\n.\r",
    "lf_dot_cr": b"\n.\r",
    "cr_dot_lf": b"\r.\n",
    "cr_dot_crlf": b"\r.\r\n",
}

SMUGGLED = (b"MAIL FROM:<admin@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled\r\n")


def smuggle(port, ending):
    s = connect(port)
    f = s.makefile("rb")
    read_reply(f)
    s.sendall(b"EHLO attacker\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
    for _ in range(3):
        read_reply(f)
    assert read_reply(f).startswith(b"354")
    s.sendall(b"Subject: first\r\n\r\nfirst message" + ending + SMUGGLED + b"\r\n.\r\nQUIT\r\n")
    rest = replies_until_close(s)
    s.close()
    return rest


@pytest.fixture(scope="module")
def reject_server(tmp_path_factory):
    with Postern(tmp_path_factory.mktemp("reject")) as s:
        yield s


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_rejected_by_default(reject_server, name):
    s = reject_server
    before_a, before_b = len(s.maildir("alice@example.test")), len(s.maildir("bob@example.test"))
    replies = smuggle(s.ports["smtp"], SMUGGLING[name])
    # One reply for the whole DATA (the smuggled commands are message text), then QUIT.
    assert replies[0].startswith(b"554 5.6.0"), replies
    assert replies[1].startswith(b"221"), replies
    assert len(replies) == 2, replies
    time.sleep(0.2)
    assert len(s.maildir("bob@example.test")) == before_b
    assert len(s.maildir("alice@example.test")) == before_a


@pytest.mark.parametrize("name", sorted(SMUGGLING))
def test_smuggling_normalized_yields_one_message(tmp_path, name):
    with Postern(tmp_path / "n", extra_toml='[smtp]\nbare_newlines = "normalize"') as s:
        replies = smuggle(s.ports["smtp"], SMUGGLING[name])
        assert replies[0].startswith(b"250 2.0.0 Ok: queued"), replies
        assert replies[1].startswith(b"221") and len(replies) == 2, replies
        msg = s.wait_mail("alice@example.test")[0].read_bytes()
        assert b"MAIL FROM:<admin@example.test>" in msg   # it stayed inside the one message
        assert s.maildir("bob@example.test") == []


def test_smuggling_in_bdat(reject_server):
    s = reject_server
    sock = connect(s.ports["smtp"])
    f = sock.makefile("rb")
    read_reply(f)
    chunk = b"Subject: x\r\n\r\nfirst\n.\n" + SMUGGLED
    sock.sendall(b"EHLO a\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
                 + b"BDAT %d LAST\r\n" % len(chunk) + chunk + b"QUIT\r\n")
    replies = replies_until_close(sock)
    assert any(r.startswith(b"554 5.6.0") for r in replies), replies
    assert not any(b"queued" in r for r in replies), replies


def test_bad_bdat_syntax_closes_the_session(reject_server):
    sock = connect(reject_server.ports["smtp"])
    f = sock.makefile("rb")
    read_reply(f)
    sock.sendall(b"EHLO a\r\nMAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\n"
                 b"BDAT 12x\r\nRSET\r\nQUIT\r\n")
    replies = replies_until_close(sock)
    assert replies[-2].startswith(b"501") and replies[-1].startswith(b"421 4.5.0"), replies


def test_nul_and_long_lines(reject_server):
    sock = connect(reject_server.ports["smtp"])
    f = sock.makefile("rb")
    read_reply(f)
    sock.sendall(b"NO\x00OP\r\n")
    assert read_reply(f).startswith(b"500 5.5.2")
    sock.sendall(b"NOOP " + b"x" * 5000 + b"\r\nNOOP\r\n")
    assert read_reply(f).startswith(b"500 5.5.2 Line too long")
    assert read_reply(f).startswith(b"250")
    sock.close()


def test_too_many_errors_closes(reject_server):
    sock = connect(reject_server.ports["smtp"])
    sock.recv(1000)
    sock.sendall(b"BOGUS\r\n" * 50)
    replies = replies_until_close(sock)
    assert replies[-1].startswith(b"421 4.7.0"), replies[-3:]
    assert len(replies) <= 11


def test_early_talker_rejected(tmp_path):
    with Postern(tmp_path / "e", extra_toml='[smtp]\ngreeting_delay = "1s"') as s:
        sock = connect(s.ports["smtp"])
        sock.sendall(b"EHLO impatient\r\n")
        replies = replies_until_close(sock)
        assert replies == [b"554 5.5.1 mail.example.test Protocol error: talking before the greeting"], replies
        s.wait_event("smtp.rejected", counter="smtp.early_talker")
        # A patient client gets the greeting after the delay.
        sock = connect(s.ports["smtp"])
        sock.settimeout(5)
        assert sock.recv(100).startswith(b"220 ")
        sock.close()


def test_slow_drip_client_cut_off_at_deadline(tmp_path):
    with Postern(tmp_path / "s", extra_toml='[smtp]\ncommand_timeout = "2s"') as s:
        sock = connect(s.ports["smtp"])
        sock.recv(100)
        start = time.monotonic()
        got = b""
        sock.settimeout(0.3)
        for ch in b"EHLO slowloris.example.test":   # one byte every 300 ms, never a CRLF
            try:
                sock.sendall(bytes([ch]))
                got += sock.recv(200)
            except socket.timeout:
                continue
            except OSError:
                break
            if got:
                break
        elapsed = time.monotonic() - start
        assert got.startswith(b"421 4.4.2"), got
        assert 1.5 < elapsed < 6, elapsed
        s.wait_event("smtp.timeout")


def test_garbage_flood_memory_is_bounded(reject_server):
    s = reject_server
    garbage = b"".join(b"GARBAGE %d \x01\x02 lorem ipsum dolor sit amet\r\n" % i for i in range(10000))
    long_line = b"X" * (8 * 1024 * 1024)   # 8 MiB with no line end at all

    def flood():
        sock = connect(s.ports["smtp"])
        sock.recv(200)
        try:
            sock.sendall(garbage)
        except OSError:
            pass   # closed after max_errors: fine
        replies = replies_until_close(sock, timeout=10)
        sock.close()
        assert 1 <= len(replies) <= 12, len(replies)   # bounded: max_errors then 421
        sock = connect(s.ports["smtp"])
        sock.recv(200)
        try:
            sock.sendall(long_line)
            sock.sendall(b"\r\nQUIT\r\n")
        except OSError:
            pass
        replies = replies_until_close(sock, timeout=10)
        sock.close()
        assert replies and replies[0].startswith(b"500 5.5.2"), replies[:2]

    for _ in range(3):
        flood()
    baseline = s.rss_kib()
    for _ in range(20):
        flood()
    grown = s.rss_kib() - baseline
    if os.environ.get("POSTERN_SANITIZED"):
        return   # AddressSanitizer keeps freed memory in quarantine: RSS says nothing there
    assert grown < 8 * 1024, f"RSS grew by {grown} KiB over 20 floods"


def test_auth_attempts_per_connection(reject_server):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    raw = connect(reject_server.ports["submissions"])
    tls = ctx.wrap_socket(raw, server_hostname="x")
    f = tls.makefile("rb")
    read_reply(f)
    tls.sendall(b"EHLO a\r\n")
    read_reply(f)
    import base64
    bad = base64.b64encode(b"\0alice@example.test\0wrong")
    codes = []
    for _ in range(3):
        tls.sendall(b"AUTH PLAIN " + bad + b"\r\n")
        codes.append(read_reply(f)[:3])
    assert codes == [b"535", b"535", b"535"]
    assert read_reply(f).startswith(b"421 4.7.0")


def test_nul_in_data_rejected(reject_server):
    import smtplib
    with smtplib.SMTP("127.0.0.1", reject_server.ports["smtp"], timeout=10) as c:
        c.ehlo("x")
        c.mail("a@remote.test")
        c.rcpt("alice@example.test")
        code, msg = c.data(b"Subject: nul\r\n\r\nbad\x00byte\r\n")
        assert code == 554 and msg.startswith(b"5.6.0")
