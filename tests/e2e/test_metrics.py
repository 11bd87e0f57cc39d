"""Issue 16 item 2: the metrics listener. /metrics is scraped before and after real traffic
(mail, a failed AUTH, PROXY headers good and bad, plaintext on a TLS port) and each counter
must move by exactly what the traffic caused; promtool accepts a real scrape; /healthz and
/readyz behave as HAProxy, Docker and Kubernetes expect, including /readyz failing while
the server drains after SIGTERM; malformed or unexpected HTTP gets 400/404/405/431/505."""

import base64
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from dns_server import DnsServer
from harness import Postern, wait_until

LISTENERS = [("smtp", "off"), ("submission", "required"), ("submissions", "off"), ("metrics", "off")]
PROXY = '[proxy_protocol]\ntrusted_networks = ["127.0.0.1/32"]'

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def http(port, request, timeout=10):
    """Sends raw bytes, returns (status, headers dict with lower-case names, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for l in lines[1:]:
        k, _, v = l.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, body


def get(port, path, method="GET"):
    return http(port, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())


def parse(text):
    """{(name, frozenset of label pairs): value} from text format 0.0.4."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def scrape(port):
    status, headers, body = get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(body.decode())


def val(samples, name, **labels):
    key = (name, frozenset(labels.items()))
    assert key in samples, f"no sample {name}{labels}"
    return samples[key]


def delta(before, after, name, **labels):
    return val(after, name, **labels) - val(before, name, **labels)


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


MESSAGE = b"From: a@remote.test\r\nTo: alice@example.test\r\nSubject: metrics\r\n\r\nhello\r\n"


@pytest.fixture
def srv(tmp_path):
    with Postern(tmp_path / "postern", listeners=LISTENERS, proxy_toml=PROXY) as s:
        yield s


def test_counters_move_by_what_the_traffic_caused(srv):
    port = srv.ports["metrics"]
    before = scrape(port)

    # One message over plain SMTP: 220 EHLO MAIL RCPT 354 250 221.
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        c.ehlo("client.remote.test")
        c.sendmail("a@remote.test", ["alice@example.test"], MESSAGE)
    srv.wait_mail("alice@example.test")
    # The queue records the outcome once the deliverer reports, just after the file appears.
    wait_until(lambda: delta(before, scrape(port), "postern_queue_recipients_total", outcome="delivered") == 1,
               what="delivery recorded")

    # One failed AUTH over implicit TLS: 220 EHLO 535 221.
    with smtplib.SMTP_SSL("127.0.0.1", srv.ports["submissions"], timeout=10, context=tls_context()) as c:
        c.ehlo("client.remote.test")
        token = base64.b64encode(b"\0alice@example.test\0wrong-password").decode()
        code, _ = c.docmd("AUTH", "PLAIN " + token)
        assert code == 535

    # Plaintext to the implicit-TLS port: a failed handshake of reason "plaintext".
    with socket.create_connection(("127.0.0.1", srv.ports["submissions"]), timeout=10) as s:
        s.sendall(b"EHLO client.remote.test\r\n")
        s.settimeout(10)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass

    # A malformed PROXY header and a valid v1 one on the `required` listener.
    sub = srv.ports["submission"]
    with socket.create_connection(("127.0.0.1", sub), timeout=10) as s:
        s.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.2 99999 587\r\n")
        assert s.recv(4096) == b""
    with socket.create_connection(("127.0.0.1", sub), timeout=10) as s:
        s.sendall(b"PROXY TCP4 192.0.2.10 127.0.0.1 40000 587\r\n")
        f = s.makefile("rb")
        assert f.readline().startswith(b"220 ")
        s.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"221 ")

    srv.wait_event("proxy.header", client="192.0.2.10:40000")
    # The server counts a connection when it ends: wait until the last one is closed.
    wait_until(lambda: val(scrape(port), "postern_connections_open", listener="submission") == 0,
               what="submission connections closed")
    wait_until(lambda: val(scrape(port), "postern_connections_open", listener="smtp") == 0, what="smtp closed")
    wait_until(lambda: val(scrape(port), "postern_connections_open", listener="submissions") == 0,
               what="submissions closed")
    after = scrape(port)

    d = lambda name, **labels: delta(before, after, name, **labels)  # noqa: E731
    assert d("postern_messages_accepted_total") == 1
    assert d("postern_events_total", event="smtp.accepted") == 1
    assert d("postern_queue_recipients_total", outcome="delivered") == 1
    assert d("postern_spool_commits_total") == 1
    assert d("postern_spool_commit_duration_seconds_count") == 1
    assert d("postern_spool_written_bytes_total") > len(MESSAGE)
    assert d("postern_smtp_replies_total", listener="smtp", **{"class": "2xx"}) == 6
    assert d("postern_smtp_replies_total", listener="smtp", **{"class": "3xx"}) == 1
    assert d("postern_smtp_replies_total", listener="smtp", **{"class": "5xx"}) == 0
    assert d("postern_connections_total", listener="smtp", outcome="served") == 1

    assert d("postern_smtp_auth_failures_total") == 1
    assert d("postern_events_total", event="smtp.auth_failed") == 1
    assert d("postern_smtp_replies_total", listener="submissions", **{"class": "5xx"}) == 1
    assert d("postern_smtp_replies_total", listener="submissions", **{"class": "2xx"}) == 3
    assert d("postern_tls_handshakes_total", listener="submissions", mode="implicit") == 1
    assert d("postern_tls_handshake_failures_total", listener="submissions", mode="implicit", reason="plaintext") == 1
    assert d("postern_connections_total", listener="submissions", outcome="tls_failed") == 1
    assert d("postern_connections_total", listener="submissions", outcome="served") == 1

    assert d("postern_proxy_header_errors_total", listener="submission", kind="malformed") == 1
    assert d("postern_proxy_headers_total", listener="submission", version="v1", command="proxy") == 1
    assert d("postern_proxy_headers_total", listener="submission", version="v2", command="proxy") == 0
    assert d("postern_connections_total", listener="submission", outcome="served") == 1
    assert d("postern_connections_total", listener="submission", outcome="proxy_refused") == 1

    assert val(after, "postern_queue_messages") == 0
    assert val(after, "postern_bans_active") == 0
    assert val(after, "postern_ready") == 1
    expiry = [v for (n, l), v in after.items() if n == "postern_tls_certificate_expiry_seconds"]
    assert expiry and all(360 * 86400 < v <= 365 * 86400 for v in expiry), expiry
    names = {dict(l)["name"] for (n, l), v in after.items() if n == "postern_tls_certificate_expiry_seconds"}
    assert names == {"mail.example.test", "localhost"}


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) not installed")
def test_promtool_accepts_a_real_scrape(srv):
    with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
        c.sendmail("a@remote.test", ["alice@example.test"], MESSAGE)
    srv.wait_mail("alice@example.test")
    t0 = time.monotonic()
    status, headers, body = get(srv.ports["metrics"], "/metrics")
    elapsed = time.monotonic() - t0
    assert status == 200
    assert int(headers["content-length"]) == len(body)
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), (r.stdout + r.stderr).decode()
    # Every family has HELP and TYPE, and counters end in _total.
    text = body.decode()
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
        assert f"# HELP {m.group(1)} " in text
        if m.group(2) == "counter":
            assert m.group(1).endswith("_total"), m.group(1)
        assert m.group(1).startswith("postern_")
    print(f"scrape: {len(body)} bytes in {elapsed * 1000:.1f} ms")


def test_health_and_readiness_during_shutdown(tmp_path):
    s = Postern(tmp_path / "postern", listeners=[("smtp", "off"), ("metrics", "off")])
    s.start()
    port = s.ports["metrics"]
    try:
        assert get(port, "/healthz")[:1] == (200,) and get(port, "/healthz")[2] == b"ok\n"
        assert get(port, "/readyz")[0] == 200
        # A transaction in progress holds the drain open; the metrics listener stays up.
        c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=20)
        c.ehlo("client.remote.test")
        assert c.mail("a@remote.test")[0] == 250
        s.proc.send_signal(signal.SIGTERM)
        status, _, body = wait_until(lambda: (r := get(port, "/readyz"))[0] == 503 and r, what="/readyz 503")
        assert body == b"stopping\n"
        assert get(port, "/healthz")[0] == 200
        assert val(scrape(port), "postern_ready") == 0
        # New SMTP connections are refused while the drain runs.
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=2).close()
        assert c.rcpt("alice@example.test")[0] == 250
        assert c.data(MESSAGE)[0] == 250
        try:
            c.quit()   # the server may already have said 421 and closed: it is stopping
        except smtplib.SMTPException:
            pass
        assert s.proc.wait(timeout=20) == 0
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:
        s.stop()


CASES = [
    ("GET /nope HTTP/1.1\r\nHost: h\r\n\r\n", 404),
    ("POST /metrics HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", 405),
    ("DELETE /readyz HTTP/1.1\r\nHost: h\r\n\r\n", 405),
    ("GET /metrics HTTP/1.1\r\n\r\n", 400),
    ("GET /metrics HTTP/1.1\nHost: h\n\n", 400),
    ("GARBAGE\r\n\r\n", 400),
    ("\x16\x03\x01\x00\xa5\x01\x00", 400),
    ("GET /metrics HTTP/2.0\r\nHost: h\r\n\r\n", 505),
    ("GET /" + "a" * 9000 + " HTTP/1.1\r\nHost: h\r\n\r\n", 431),
]


@pytest.mark.parametrize("request_text,status", CASES, ids=[str(s) + "-" + str(i) for i, (_, s) in enumerate(CASES)])
def test_http_errors(srv, request_text, status):
    got, headers, body = http(srv.ports["metrics"], request_text.encode("latin-1"))
    assert got == status, body
    assert headers["connection"] == "close"
    if status == 405:
        assert headers["allow"] == "GET, HEAD"


def test_silent_client_is_closed_after_the_read_timeout(srv):
    """Nothing sent: the connection ends after the 10 s request timeout (not an SMTP
    command timeout), so idle sockets cannot hold the metrics listener's 32 slots."""
    with socket.create_connection(("127.0.0.1", srv.ports["metrics"]), timeout=30) as c:
        t0 = time.monotonic()
        assert c.recv(4096) == b""
        assert 9 < time.monotonic() - t0 < 20
    with socket.create_connection(("127.0.0.1", srv.ports["metrics"]), timeout=30) as c:
        c.sendall(b"GET /metrics HTTP/1.1\r\n")   # an incomplete head: 408 at the timeout
        f = c.makefile("rb")
        assert f.readline().startswith(b"HTTP/1.1 408 ")


def test_head_and_http10(srv):
    port = srv.ports["metrics"]
    status, headers, body = get(port, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 1000
    status, _, body = http(port, b"GET /readyz HTTP/1.0\r\n\r\n")
    assert status == 200 and body == b"ready\n"


def test_metrics_listener_behind_proxy(tmp_path):
    """`proxy_protocol` on the metrics listener: the PROXY header is read first (HAProxy
    health checks with send-proxy-v2 send a LOCAL header)."""
    with Postern(tmp_path / "postern", listeners=[("smtp", "off"), ("metrics", "required")], proxy_toml=PROXY) as s:
        port = s.ports["metrics"]
        v2_local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00, 0x00, 0x00])
        status, _, body = http(port, v2_local + b"GET /readyz HTTP/1.1\r\nHost: h\r\n\r\n")
        assert status == 200 and body == b"ready\n"
        status, _, _ = http(port, b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 9465\r\nGET /healthz HTTP/1.0\r\n\r\n")
        assert status == 200
        # Without a header nothing is answered: the connection just closes.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            c.settimeout(10)
            assert c.recv(4096) == b""
        samples = scrape_via_proxy(port)
        assert val(samples, "postern_proxy_headers_total", listener="metrics", version="v2", command="local") >= 1
        assert val(samples, "postern_proxy_header_errors_total", listener="metrics", kind="missing") == 1


def scrape_via_proxy(port):
    status, _, body = http(port, b"PROXY TCP4 192.0.2.1 127.0.0.1 5555 9465\r\nGET /metrics HTTP/1.0\r\n\r\n")
    assert status == 200
    return parse(body.decode())


def test_config_check_accepts_metrics_listener(tmp_path):
    s = Postern(tmp_path / "postern", listeners=[("smtp", "off"), ("metrics", "off")])
    r = s.cli("config", "check")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    show = s.cli("config", "show").stdout
    assert "listener metrics" in show
    text = s.config_path.read_text().replace(f'"127.0.0.1:{s.ports["metrics"]}"', '"0.0.0.0:9465"')
    s.config_path.write_text(text)
    r = s.cli("config", "check")
    assert r.returncode == 0
    assert "metrics listener on 0.0.0.0:9465 is reachable from the network" in r.stderr


ZONE = "zen.example"
# 127.0.0.1 is in the harness's default allow list, which skips DNSBL: allow another address.
DNSBL_PROTECT = '[protect]\nallow_networks = ["127.0.0.9/32"]\nmax_connection_rate = 1000'


def dnsbl_toml(resolver):
    return (f'[protect.dnsbl]\nresolver = "{resolver}"\ntimeout = "1s"\n\n'
            f'[[protect.dnsbl.zone]]\nname = "{ZONE}"\naction = "reject"\ncodes = ["127.0.0.2"]\n')


def send_from(port, source):
    """One transaction to alice from `source`; the first refusal's code, or 250."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10, source_address=(source, 0)) as c:
            c.ehlo("client.remote.test")
            c.sendmail("a@remote.test", ["alice@example.test"], MESSAGE)
        return 250
    except smtplib.SMTPRecipientsRefused as e:
        return next(iter(e.recipients.values()))[0]
    except smtplib.SMTPResponseException as e:
        return e.smtp_code


def test_dnsbl_hits_and_bans(tmp_path):
    with DnsServer() as dns, Postern(tmp_path / "p", listeners=[("smtp", "off"), ("metrics", "off")],
                                       protect_toml=DNSBL_PROTECT, extra_toml=dnsbl_toml(dns.address)) as s:
        port = s.ports["metrics"]
        before = scrape(port)
        # Not 127.0.0.1: the harness's own connect probe (from there) may still be looked up.
        dns.records["3.0.0.127." + ZONE] = [("A", "127.0.0.2")]
        assert send_from(s.ports["smtp"], "127.0.0.3") == 554
        assert send_from(s.ports["smtp"], "127.0.0.2") == 250
        after = scrape(port)
        assert delta(before, after, "postern_dnsbl_hits_total") == 1
        assert delta(before, after, "postern_dnsbl_lookups_total", result="listed") == 1
        assert delta(before, after, "postern_dnsbl_lookups_total", result="clean") >= 1
        assert delta(before, after, "postern_events_total", event="smtp.dnsbl") == 1

        assert val(after, "postern_bans_active") == 0
        s.cli("ban", "add", "192.0.2.7", "--for", "10m")
        s.cli("ban", "add", "192.0.2.8", "--for", "10m")
        assert val(scrape(port), "postern_bans_active") == 2
        s.cli("ban", "del", "192.0.2.7")
        assert val(scrape(port), "postern_bans_active") == 1


def test_haproxy_takes_a_draining_server_out_on_readyz(tmp_path):
    """The /readyz check of docs/deployment-haproxy.md, run by a real HAProxy: the server is
    UP, and goes DOWN as soon as Postern starts draining, while the session under way ends
    normally."""
    from haproxy import HAProxy, Route

    s = Postern(tmp_path / "postern", listeners=[("smtp", "required"), ("metrics", "off")], proxy_toml=PROXY)
    s.start()
    try:
        checks = ("option httpchk\n"
                  "    http-check send meth GET uri /readyz ver HTTP/1.1 hdr Host postern\n"
                  "    http-check expect status 200")
        route = Route("smtp", s.ports["smtp"], "send-proxy-v2",
                      f"check port {s.ports['metrics']} inter 100ms fall 1 rise 2", checks)
        with HAProxy(tmp_path / "haproxy", [route]) as h:
            wait_until(lambda: h.servers().get("smtp", {}).get("check_status") == "L7OK", what="first good check")
            assert h.servers()["smtp"]["status"] == "UP"
            c = smtplib.SMTP("127.0.0.1", h.ports["smtp"], timeout=20)
            c.ehlo("client.remote.test")
            assert c.mail("a@remote.test")[0] == 250
            s.proc.send_signal(signal.SIGTERM)
            down = wait_until(lambda: (f := h.servers().get("smtp", {})).get("status") == "DOWN" and f, timeout=5,
                              what="HAProxy marks the server DOWN")
            assert down["check_status"] == "L7STS" and down["check_code"] == "503", down
            assert c.rcpt("alice@example.test")[0] == 250
            assert c.data(MESSAGE)[0] == 250
            try:
                c.quit()
            except smtplib.SMTPException:
                pass
            assert s.proc.wait(timeout=20) == 0
    finally:
        s.stop()


def test_metrics_listener_is_logged_as_plain_http(srv):
    """No STARTTLS on the metrics listener, whatever [tls] says: its listening line says so."""
    ev = {e["listener"]: e for e in srv.log_events("server.listening")}
    assert ev["metrics"]["tls"] == "none", ev
    assert ev["submission"]["tls"] == "starttls" and ev["submissions"]["tls"] == "implicit", ev
