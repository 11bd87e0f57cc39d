"""[[milter]] with a real rspamd (Debian's rspamd 3.4, its proxy worker in milter mode with
self_scan) over the milter protocol, plus a scripted filter (fake_milter.py) for the edits
rspamd does not easily make. rspamd runs from a private configuration in a temporary folder
(the packaged rules from /etc/rspamd, our overrides in local.d), its DNS at a loopback
dns_server.py that knows nothing, no Redis; never through systemd.

rspamd takes a while to start (it compiles its regular expressions and the public suffix
list), so one instance serves the whole module."""

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path

import pytest

from dns_server import DnsServer
from fake_milter import FakeMilter
from harness import Postern, free_port, stop_process, wait_until

RSPAMD = shutil.which("rspamd") or "/usr/bin/rspamd"
RSPAMD_START_TIMEOUT = 300   # seconds: hyperscan and the TLD list compile on a busy 2-core box
MARKER = "POSTERN-SPAM-MARKER-7f3a"
GTUBE = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X"

pytestmark = pytest.mark.skipif(not os.path.exists(RSPAMD), reason="rspamd is not installed")


class Rspamd:
    def __init__(self, workdir, dns_address):
        self.dir = Path(workdir)
        self.port = free_port()
        for sub in ("etc/local.d", "run", "db", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        (self.dir / "rspamd.conf").write_text(f"""
.include "$CONFDIR/common.conf"
options {{
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(try=true; priority=1,duplicate=merge) "$LOCAL_CONFDIR/local.d/options.inc"
}}
logging {{
  type = "file";
  filename = "$LOGDIR/rspamd.log";
  level = "info";
}}
worker "rspamd_proxy" {{
  bind_socket = "127.0.0.1:{self.port}";
  milter = yes;
  timeout = 120s;
  upstream "local" {{
    default = yes;
    self_scan = yes;
  }}
  count = 1;
  spam_header = "X-Spam";
  reject_message = "Spam message rejected";
}}
""")
        local = self.dir / "etc/local.d"
        host, port = dns_address.rsplit(":", 1)
        (local / "options.inc").write_text(
            f'dns {{\n  nameserver = ["{host}:{port}"];\n  timeout = 1s;\n  retransmits = 1;\n}}\n')
        # A message with the marker in its Subject scores 10: "add header" (X-Spam: Yes).
        (local / "marker.map").write_text(f"/{MARKER}/\n")
        (local / "multimap.conf").write_text(f"""
POSTERN_TEST_MARKER {{
  type = "header";
  header = "Subject";
  regexp = true;
  map = "{local}/marker.map";
  score = 10.0;
}}
""")
        (local / "actions.conf").write_text("reject = 50;\nadd_header = 6;\ngreylist = null;\nrewrite_subject = null;\n")
        # Headers rspamd adds through the milter, also for mail from loopback (skip_local).
        (local / "milter_headers.conf").write_text(
            'use = ["x-spamd-result", "x-spam-status"];\nskip_local = false;\nskip_authenticated = false;\n')
        (local / "redis.conf").write_text("")   # no Redis: modules that need it stay off
        self.proc = None

    def start(self):
        self.log = open(self.dir / "stdout.log", "ab")
        self.proc = subprocess.Popen(
            [RSPAMD, "-f", "-u", "root", "-g", "root", "-i", "-c", str(self.dir / "rspamd.conf"),
             f"--var=LOCAL_CONFDIR={self.dir / 'etc'}", f"--var=RUNDIR={self.dir / 'run'}",
             f"--var=DBDIR={self.dir / 'db'}", f"--var=LOGDIR={self.dir / 'log'}"],
            stdout=self.log, stderr=self.log, start_new_session=True)
        wait_until(lambda: self.listening() or self.proc.poll() is not None, timeout=RSPAMD_START_TIMEOUT,
                   interval=0.5, what="rspamd milter port")
        if self.proc.poll() is not None:
            raise AssertionError("rspamd exited:\n" + self.logtext()[-4000:])

    def listening(self):
        return Postern._can_connect(self.port)

    def stop(self):
        if self.proc is None:
            return
        # The main process takes its workers down with it; the whole group, in case it does not.
        stop_process(self.proc, signal.SIGTERM, 30)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None
        self.log.close()

    def logtext(self):
        p = self.dir / "log/rspamd.log"
        return p.read_text(errors="replace") if p.exists() else ""


@pytest.fixture(scope="module")
def rspamd(tmp_path_factory):
    with DnsServer({}) as dns:
        r = Rspamd(tmp_path_factory.mktemp("rspamd"), dns.address)
        r.start()
        try:
            yield r
        finally:
            r.stop()


def milter_toml(address, default_action="tempfail", extra=""):
    return (f'[verify]\njunk_header = "X-Spam: Yes"\n\n'
            f'[[milter]]\naddress = "{address}"\ndefault_action = "{default_action}"\n'
            f'command_timeout = "20s"\nmessage_timeout = "60s"\n{extra}\n')


def send(server, subject, body="hello\r\n", rcpt="bob@example.test", sender="sender@remote.test"):
    """One message on the smtp listener: (rcpt reply, data reply) as (code, text) pairs."""
    with smtplib.SMTP("127.0.0.1", server.ports["smtp"], timeout=90) as c:
        c.ehlo("client.remote.test")
        code, _ = c.mail(sender)
        assert code == 250
        r = c.rcpt(rcpt)
        if r[0] != 250:
            return (r[0], r[1].decode()), None
        msg = (f"From: <{sender}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n"
               f"Message-ID: <{time.time_ns()}@remote.test>\r\nDate: Wed, 02 Dec 2026 10:00:00 +0000\r\n\r\n{body}")
        d = c.data(msg.encode())
        return (r[0], r[1].decode()), (d[0], d[1].decode())


def stored(path):
    """A delivered file as text with LF line ends, and its header lines (delivery's own
    Return-Path and Delivered-To first)."""
    text = path.read_bytes().decode(errors="replace").replace("\r\n", "\n")
    return text, text.split("\n\n", 1)[0].split("\n")


def junk(server, address):
    local, domain = address.split("@")
    d = server.mail_root / domain / local / ".Junk" / "new"
    return sorted(d.iterdir()) if d.exists() else []


@pytest.fixture
def server(tmp_path, rspamd):
    with Postern(tmp_path / "p", extra_toml=milter_toml(f"127.0.0.1:{rspamd.port}")) as s:
        yield s


def test_gtube_is_rejected_with_rspamds_reason(server):
    _, data = send(server, "gtube", body=f"{GTUBE}\r\n")
    assert data[0] == 554, data
    assert data[1].startswith("5.7.1 "), data
    assert "gtube" in data[1].lower(), data
    ev = server.wait_event("milter.reject", stage="eom")
    assert ev["milter"].startswith("127.0.0.1:")
    assert server.maildir("bob@example.test") == []


def test_spam_goes_to_junk_with_rspamds_headers(server):
    _, data = send(server, f"offer {MARKER}")
    assert data[0] == 250, data
    files = wait_until(lambda: junk(server, "bob@example.test"), timeout=15, what="message in Junk")
    text, header = stored(files[0])
    assert "X-Spam: Yes" in header, text[:2000]
    assert "X-Spam-Status: Yes, score=10.00" in header, text[:2000]
    assert any(h.startswith("X-Spamd-Result: ") for h in header), text[:2000]
    assert "POSTERN_TEST_MARKER(10.00)" in text, text[:2000]
    assert server.maildir("bob@example.test") == []


def test_clean_message_goes_to_inbox_with_headers(server):
    _, data = send(server, "lunch on friday?", body="Shall we meet at noon?\r\n")
    assert data[0] == 250, data
    files = server.wait_mail("bob@example.test", timeout=15)
    text, header = stored(files[0])
    assert any(h.startswith("X-Spamd-Result: ") for h in header), text[:2000]
    assert any(h.startswith("X-Spam-Status: No") for h in header), text[:2000]
    assert "X-Spam: Yes" not in header
    assert "Shall we meet at noon?" in text
    assert junk(server, "bob@example.test") == []


@pytest.mark.parametrize("default_action", ["tempfail", "accept"])
def test_filter_down_gives_default_action(tmp_path, default_action):
    port = free_port()   # nothing listens here: rspamd stopped
    with Postern(tmp_path / "p", extra_toml=milter_toml(f"127.0.0.1:{port}", default_action)) as s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30) as c:
            c.ehlo("client.remote.test")
            code, text = c.mail("sender@remote.test")
            if default_action == "tempfail":
                assert code == 451 and text.decode().startswith("4.7.1 "), (code, text)
            else:
                assert code == 250
                assert c.rcpt("bob@example.test")[0] == 250
                assert c.data(b"Subject: x\r\n\r\nhi\r\n")[0] == 250
        if default_action == "accept":
            s.wait_mail("bob@example.test")
        # Logged once per connection (the harness's readiness probes are connections too).
        evs = s.log_events("milter.unavailable")
        conns = [e["conn"] for e in evs]
        assert evs and len(conns) == len(set(conns)), evs
        assert all(e["action"] == default_action and "connect" in e["reason"] for e in evs), evs


# ---- protocol edge cases with the scripted filter ----

def test_scripted_header_and_body_edits_and_quarantine(tmp_path):
    eom = [FakeMilter.chgheader(1, "Subject", "rewritten"), FakeMilter.addheader("X-Filter", "seen"),
           FakeMilter.insheader(0, "X-Top", "first"), FakeMilter.replbody(b"replaced body\r\n"),
           FakeMilter.quarantine("suspicious"), FakeMilter.CONTINUE]
    with FakeMilter(on_eom=eom) as m, Postern(tmp_path / "p", extra_toml=milter_toml(m.address)) as s:
        _, data = send(s, "original subject", body="original body\r\n")
        assert data[0] == 250, data
        files = wait_until(lambda: junk(s, "bob@example.test"), timeout=15, what="message in Junk")
        text, header = stored(files[0])
        # Inserted at index 0: above everything but what delivery itself adds.
        assert header[:3] == ["Return-Path: <sender@remote.test>", "Delivered-To: bob@example.test", "X-Top: first"], text
        assert "Subject: rewritten" in header and "original subject" not in text
        assert header[-1] == "X-Filter: seen", text   # added: at the end of the header
        assert text.endswith("\n\nreplaced body\n") and "original body" not in text
        ev = s.wait_event("milter.quarantine")
        assert ev["reply"] == "suspicious"
        # What the filter saw: the real client, our Received above the client's fields,
        # headers as name/value.
        assert m.macros.get("{client_addr}") == "127.0.0.1"
        assert m.macros.get("{mail_addr}") == "sender@remote.test"
        assert m.macros.get("{rcpt_addr}") == "bob@example.test"
        assert m.macros.get("{i}")
        names = [h[0] for h in m.headers]   # our trace (and Authentication-Results) on top
        assert names.index("Received") < names.index("From"), names
        assert ("Subject", "original subject") in m.headers
        assert m.body == b"original body\r\n"


def test_scripted_rcpt_reject_and_discard(tmp_path):
    def on_rcpt(addr):
        if addr.startswith("<alice@"):
            return [FakeMilter.replycode("550 5.7.1 alice does not take mail from you")]
        if addr.startswith("<team@"):
            return [FakeMilter.TEMPFAIL]
        return [FakeMilter.CONTINUE]

    with FakeMilter(on_rcpt=on_rcpt, on_eom=[FakeMilter.DISCARD]) as m, \
            Postern(tmp_path / "p", extra_toml=milter_toml(m.address)) as s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=30) as c:
            c.ehlo("client.remote.test")
            assert c.mail("sender@remote.test")[0] == 250
            code, text = c.rcpt("alice@example.test")
            assert (code, text.decode()) == (550, "5.7.1 alice does not take mail from you")
            code, text = c.rcpt("team@example.test")
            assert code == 451 and text.decode().startswith("4.7.1 "), (code, text)
            assert c.rcpt("bob@example.test")[0] == 250
            code, text = c.data(b"Subject: dropped\r\n\r\nhi\r\n")
            assert code == 250, (code, text)
            # RSET after a MAIL reaches the filter as an abort.
            assert c.mail("sender@remote.test")[0] == 250
            assert c.rset()[0] == 250
            assert c.noop()[0] == 250
        s.wait_event("milter.reject", stage="rcpt")
        s.wait_event("milter.tempfail", stage="rcpt")
        s.wait_event("milter.discard", stage="eom")
        s.wait_event("smtp.accepted", status="discarded")
        assert "A" in m.commands
        time.sleep(0.5)
        assert s.maildir("bob@example.test") == []


def test_filter_sees_the_real_client_behind_a_proxy(tmp_path):
    """After a PROXY header the filter is told the client the proxy speaks for, not the proxy."""
    with FakeMilter() as m, Postern(tmp_path / "p", listeners=[("smtp", "required")],
                                    proxy_toml='[proxy_protocol]\ntrusted_networks = ["127.0.0.1/32"]',
                                    extra_toml=milter_toml(m.address)) as s:
        with socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=10) as c:
            c.sendall(f"PROXY TCP4 203.0.113.7 127.0.0.1 40000 {s.ports['smtp']}\r\n".encode())
            f = c.makefile("rb")
            assert f.readline().startswith(b"220 ")
            c.sendall(b"QUIT\r\n")
            assert f.readline().startswith(b"221 ")
        wait_until(lambda: "C" in m.commands, what="connect sent to the filter")
        assert m.macros.get("{client_addr}") == "203.0.113.7"
        assert m.macros.get("{client_name}") == "[203.0.113.7]"
