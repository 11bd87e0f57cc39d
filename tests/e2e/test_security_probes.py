"""Issue 16 item 6: bugs found by probing the SMTP front — a bare LF smuggling a second
command, forged EHLO names in Received, an over-long SASL response, invalid UTF-8 in JSON
logs, and `postern ban` without access to the control socket."""

import socket
import time

import pytest

from harness import Postern, replies_until_close, wait_until


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def greeted(port):
    """A connection whose 220 greeting has been read (a client that talks first is refused)."""
    s = connect(port)
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(1)
        assert chunk, data
        data += chunk
    assert data.startswith(b"220 "), data
    return s


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with Postern(tmp_path_factory.mktemp("probes")) as s:
        yield s


def test_text_after_bare_lf_is_not_a_command(server):
    # The part after the bare LF belongs to the refused line: it must never add a recipient.
    s = greeted(server.ports["smtp"])
    s.sendall(b"HELO a\r\nMAIL FROM:<x@remote.test>\r\n"
              b"RCPT TO:<alice@example.test>\nRCPT TO:<bob@example.test>\r\n"
              b"QUIT\r\n")
    replies = replies_until_close(s)
    s.close()
    codes = [r[:3] for r in replies]
    assert codes == [b"250", b"250", b"500", b"221"], replies
    assert replies[2].startswith(b"500 5.5.2 Bare LF"), replies


def test_bare_cr_line_discarded_up_to_crlf(server):
    s = greeted(server.ports["smtp"])
    s.sendall(b"HELO a\r\nNOOP\rRSET\nQUIT\r\nNOOP\r\nQUIT\r\n")
    replies = replies_until_close(s)
    s.close()
    assert [r[:3] for r in replies] == [b"250", b"500", b"250", b"221"], replies


FORGED = b"evil.test (by mail.example.test; Mon, 1 Jan 2024 00:00:00 +0000)"


def test_forged_ehlo_refused_and_never_in_received(server):
    before = len(server.maildir("alice@example.test"))
    s = greeted(server.ports["smtp"])
    s.sendall(b"EHLO " + FORGED + b"\r\n"
              b"HELO bad;name\r\n"
              b"MAIL FROM:<x@remote.test>\r\n"          # no valid EHLO yet: 503
              b"EHLO client.remote.test\r\n")
    s.settimeout(10)
    data = b""
    while data.count(b"\r\n250 ") < 1:
        chunk = s.recv(65536)
        assert chunk, data
        data += chunk
    lines = [l for l in data.split(b"\r\n") if l]
    assert lines[0].startswith(b"501 5.5.2 Invalid EHLO argument: only one host name"), lines
    assert lines[1].startswith(b"501 5.5.2 Invalid HELO argument: invalid character in host name"), lines
    assert lines[2].startswith(b"503"), lines
    s.sendall(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n"
              b"Subject: t\r\n\r\nbody\r\n.\r\nQUIT\r\n")
    rest = replies_until_close(s)
    s.close()
    assert any(r.startswith(b"250 2.0.0 Ok: queued") for r in rest), rest
    msgs = [m.read_bytes() for m in server.wait_mail("alice@example.test", count=before + 1)]
    assert any(b"Received: from client.remote.test ([127.0.0.1])" in m for m in msgs), msgs
    assert not any(b"evil.test" in m or b"bad;name" in m for m in msgs), msgs
    assert server.log_events("smtp.rejected") and any(
        e.get("counter") == "smtp.bad_helo" for e in server.log_events("smtp.rejected"))


@pytest.mark.parametrize("name", ["localhost", "[127.0.0.1]", "[IPv6:::1]", "WIN_PC.corp.test"])
def test_real_client_helo_names_accepted(server, name):
    import smtplib
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=10) as c:
        code, _ = c.ehlo(name)
        assert code == 250
        code, _ = c.helo(name)
        assert code == 250


def tls_session(port):
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    tls = ctx.wrap_socket(connect(port), server_hostname="x")
    f = tls.makefile("rb")
    return tls, f


def read_reply(f):
    lines = []
    while True:
        line = f.readline()
        if not line:
            return b"".join(lines)
        lines.append(line)
        if line[3:4] != b"-":
            return b"".join(lines)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_overlong_sasl_response_ends_the_exchange(server, mech):
    import base64
    tls, f = tls_session(server.ports["submissions"])
    read_reply(f)
    tls.sendall(b"EHLO client.remote.test\r\n")
    assert read_reply(f).startswith(b"250")
    tls.sendall(b"AUTH " + mech.encode() + b"\r\n")
    assert read_reply(f).startswith(b"334")
    # Longer than the 12288-octet AUTH line limit, then a command on the next line.
    tls.sendall(b"A" * 13000 + b"\r\nNOOP\r\n")
    assert read_reply(f).startswith(b"500 5.5.6"), "expected 500 5.5.6"
    assert read_reply(f).startswith(b"250 2.0.0 Ok")   # NOOP is a command, not a response
    # The AUTH state was reset: a new exchange works from the start.
    good = base64.b64encode(b"\0alice@example.test\0alice-secret-1")
    tls.sendall(b"AUTH PLAIN " + good + b"\r\n")
    assert read_reply(f).startswith(b"235"), "AUTH after the refused exchange"
    tls.sendall(b"QUIT\r\n")
    assert read_reply(f).startswith(b"221")
    tls.close()


def test_sasl_response_with_bare_lf_ends_the_exchange(server):
    tls, f = tls_session(server.ports["submissions"])
    read_reply(f)
    tls.sendall(b"EHLO client.remote.test\r\nAUTH LOGIN\r\n")
    assert read_reply(f).startswith(b"250")
    assert read_reply(f).startswith(b"334")
    tls.sendall(b"YWxpY2U=\nNOOP\r\nNOOP\r\n")
    assert read_reply(f).startswith(b"500 5.5.2 Bare LF")
    assert read_reply(f).startswith(b"250 2.0.0 Ok")
    tls.sendall(b"QUIT\r\n")
    assert read_reply(f).startswith(b"221")
    tls.close()


def test_ban_add_without_access_to_the_control_socket_fails(tmp_path_factory):
    """`postern ban add` run by a user who cannot reach control.sock must fail loudly, not
    report a ban that the running server never heard of."""
    import os
    import shutil
    import subprocess
    import tempfile
    from harness import BIN
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the CLI as another user")
    # The configuration must be readable by `nobody`; pytest's tmp dirs are 0700.
    work = tempfile.mkdtemp(prefix="postern-ban-eacces-", dir="/tmp")
    try:
        os.chmod(work, 0o755)
        # No TLS: the key file is 0600 and the CLI as nobody must get as far as the socket.
        with Postern(os.path.join(work, "p"), listeners=[("smtp", "off")], tls=False) as s:
            os.chmod(s.dir, 0o755)
            os.chmod(s.config_path, 0o644)
            state = s.data_dir / "state"
            assert (state / "control.sock").exists()
            os.chmod(s.data_dir, 0o755)
            os.chmod(state, 0o700)          # root-owned: nobody cannot reach the socket
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", BIN, "ban", "add",
                                "192.0.2.77", "--for", "1h", "--config", str(s.config_path)],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
            assert "banned" not in r.stdout, r.stdout
            assert "cannot reach the control socket" in r.stderr and "Permission denied" in r.stderr, r.stderr
            # Nothing was banned, neither in the server nor in its bans file.
            assert "192.0.2.77" not in s.cli("ban", "list").stdout
            bans = state / "bans"
            assert not bans.exists() or "192.0.2.77" not in bans.read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_json_log_stays_valid_utf8_with_client_bytes(tmp_path):
    """Invalid UTF-8 from a client (here the AUTH user name) is escaped in JSON logs."""
    import base64
    import json
    import time
    s = Postern(tmp_path / "j")
    s.config_path.write_text('log_format = "json"\n' + s.config_path.read_text())
    with s:
        tls, f = tls_session(s.ports["submissions"])
        read_reply(f)
        tls.sendall(b"EHLO client.remote.test\r\n")
        read_reply(f)
        resp = base64.b64encode(b"\0bad\xff\xfe\xc3(user@example.test\0pw")
        tls.sendall(b"AUTH PLAIN " + resp + b"\r\n")
        assert read_reply(f).startswith(b"535")
        tls.sendall(b"QUIT\r\n")
        read_reply(f)
        tls.close()

        def auth_event():
            for raw in s.log_path.read_bytes().splitlines():
                if b'"smtp.auth"' in raw:
                    return raw
            return None
        deadline = time.monotonic() + 10
        while (raw := auth_event()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert raw is not None, s.log()
    for line in s.log_path.read_bytes().splitlines():
        if line.startswith(b"{"):
            json.loads(line.decode("utf-8"))   # strict: raises on invalid UTF-8
    ev = json.loads(raw.decode("utf-8"))
    assert ev["user"] == "bad\\xff\\xfe\\xc3(user@example.test", ev


# -- Per-peer limits before the PROXY header ---------------------------------------------------

TRUST_ONE = '[proxy_protocol]\ntrusted_networks = ["127.0.0.1/32"]\nheader_timeout = "30s"'


def test_silent_untrusted_peers_cannot_lock_out_the_proxy(tmp_path):
    """50 silent connections from an address that is not a trusted proxy, on a `required`
    listener with max_connections = 50: each is closed at once, so the real proxy (127.0.0.1)
    is still served. Before the fix they held every slot until header_timeout."""
    with Postern(tmp_path / "p", listeners=[("smtp", "required")], proxy_toml=TRUST_ONE,
                 server_toml="max_connections = 50",
                 protect_toml='[protect]\nallow_networks = ["127.0.0.9/32"]\nmax_connections_per_client = 100\nmax_connection_rate = 10000') as p:
        port = p.ports["smtp"]
        silent = [socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
                  for _ in range(50)]
        try:
            # header_timeout is 30s: only the immediate close can log these within 10s.
            wait_until(lambda: len(p.log_events("proxy.untrusted_peer")) == 50, timeout=10,
                       what="50 untrusted peers closed")
            for s in silent:   # closed without a byte
                s.settimeout(3)
                assert s.recv(100) == b""
            with connect(port) as s:
                s.sendall(b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 25\r\n")
                s.settimeout(10)
                assert s.recv(100).startswith(b"220 ")
        finally:
            for s in silent:
                s.close()
        events = p.log_events("proxy.untrusted_peer")
        assert len(events) == 50 and all(e["peer"].startswith("127.0.0.2:") for e in events)
        assert events[0]["detail"] == "closed at once: not in trusted_networks"
        assert not p.log_events("net.max_connections")


def test_per_client_limit_applies_before_the_first_bytes(tmp_path):
    """On a mixed implicit-TLS listener a direct client's first bytes are read before the
    handshake; its per-address limit must apply before that wait, not after."""
    with Postern(tmp_path / "p", listeners=[("submissions", "mixed")], proxy_toml=TRUST_ONE,
                 protect_toml='[protect]\nallow_networks = ["127.0.0.9/32"]\nmax_connections_per_client = 3\nmax_connection_rate = 10000') as p:
        port = p.ports["submissions"]
        held = [socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
                for _ in range(3)]
        try:
            time.sleep(0.5)   # let the server accept (and count) the three held connections
            extra = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.2", 0))
            extra.settimeout(3)
            assert extra.recv(100) == b""   # refused at once: no TLS, nothing read
            extra.close()
            ev = p.wait_event("protect.too_many_connections")
            assert ev["client"].startswith("127.0.0.2:")
            # Another address is unaffected.
            with socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.0.3", 0)) as s:
                import ssl
                c = ssl.create_default_context()
                c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
                with c.wrap_socket(s) as t:
                    assert t.recv(100).startswith(b"220 ")
        finally:
            for s in held:
                s.close()
