"""Issue 16 item 6: bugs found by probing the SMTP front — a bare LF smuggling a second
command, forged EHLO names in Received, an over-long SASL response, invalid UTF-8 in JSON
logs, and `postern ban` without access to the control socket."""

import socket

import pytest

from harness import Postern


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def replies_until_close(sock, timeout=10):
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return [l for l in data.split(b"\r\n") if l]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Postern(tmp_path_factory.mktemp("probes")) as s:
        yield s


def test_text_after_bare_lf_is_not_a_command(server):
    # The part after the bare LF belongs to the refused line: it must never add a recipient.
    s = connect(server.ports["smtp"])
    s.sendall(b"HELO a\r\nMAIL FROM:<x@remote.test>\r\n"
              b"RCPT TO:<alice@example.test>\nRCPT TO:<bob@example.test>\r\n"
              b"QUIT\r\n")
    replies = replies_until_close(s)
    s.close()
    codes = [r[:3] for r in replies]
    assert codes == [b"220", b"250", b"250", b"500", b"221"], replies
    assert replies[3].startswith(b"500 5.5.2 Bare LF"), replies


def test_bare_cr_line_discarded_up_to_crlf(server):
    s = connect(server.ports["smtp"])
    s.sendall(b"HELO a\r\nNOOP\rRSET\nQUIT\r\nNOOP\r\nQUIT\r\n")
    replies = replies_until_close(s)
    s.close()
    assert [r[:3] for r in replies] == [b"220", b"250", b"500", b"250", b"221"], replies

