"""Issue 16: started as root, the daemon binds 25/465/587, then serves as [server] user; the
privileged reader keeps certbot-style renewals (root-only folder, root-owned 0600 key,
symlinks renamed into place) loading after the drop."""

import os
import pwd
import shutil
import smtplib
import socket
import ssl
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from cryptography import x509

from harness import PASSWORDS, Postern, make_cert, wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starting as root needs root")

MSG = b"From: a@example.test\r\nTo: alice@example.test\r\nSubject: priv\r\n\r\nbody\r\n"


def service_user():
    pw = pwd.getpwnam("postern")   # made by scripts/install-deps
    return pw.pw_uid, pw.pw_gid


def proc_status(pid):
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        out[key] = value.split()
    return out


def children(pid):
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry.name))
    return kids


@pytest.fixture
def reachable_dir():
    """pytest's tmp_path is root-only; the service user must be able to reach the instance."""
    d = Path(tempfile.mkdtemp(prefix="postern-priv-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def certbot_layout(base, serial):
    """Like certbot: archive/ and live/ are root-only (0700), live/ holds symlinks to the
    numbered files in archive/, and the key is root-owned 0600."""
    archive, live = base / "archive", base / "live"
    base.mkdir(mode=0o755)
    archive.mkdir(mode=0o700)
    live.mkdir(mode=0o700)
    install_pair(base, serial, 1)
    return live / "fullchain.pem", live / "privkey.pem"


def install_pair(base, serial, n):
    archive, live = base / "archive", base / "live"
    work = base / f"gen{n}"
    cert, key = make_cert(work, serial=serial)
    shutil.copy(cert, archive / f"fullchain{n}.pem")
    shutil.copy(key, archive / f"privkey{n}.pem")
    os.chmod(archive / f"privkey{n}.pem", 0o600)
    shutil.rmtree(work)
    for name in ("fullchain", "privkey"):
        tmp = live / f".{name}.new"
        os.symlink(f"../archive/{name}{n}.pem", tmp)
        os.rename(tmp, live / f"{name}.pem")   # rename-into-place, as certbot does


def served_serial(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="mail.example.test") as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True)).serial_number


def make_server(d, **kw):
    srv = Postern(d, user=None, **kw)   # no [server] user: the default, "postern"
    return srv


def use_certbot_certs(srv, base, serial):
    cert, key = certbot_layout(base, serial)
    srv.cert, srv.key = cert, key
    srv._write_config()


def test_serves_as_service_user_on_all_ports(reachable_dir):
    uid, gid = service_user()
    srv = make_server(reachable_dir)
    use_certbot_certs(srv, reachable_dir / "letsencrypt", 1001)
    os.chmod(srv.accounts_path, 0o600)   # root-only, as `account add` run by root may leave it
    with srv:
        st = proc_status(srv.proc.pid)
        assert st["Uid"] == [str(uid)] * 4 and st["Gid"] == [str(gid)] * 4, st
        assert st["Groups"] == [str(gid)], st
        assert st["CapEff"] == ["0000000000000000"], st
        ev = srv.wait_event("server.privileges")
        assert ev["status"] == "dropped" and ev["user"] == "postern" and ev["uid"] == str(uid)

        # The reader: root, no listener or other file of the daemon's, only its socket.
        reader = [p for p in children(srv.proc.pid) if Path(f"/proc/{p}/comm").read_text().strip() == "postern-reader"]
        assert len(reader) == 1, children(srv.proc.pid)
        rst = proc_status(reader[0])
        assert rst["Uid"][0] == "0"
        # Of root's capabilities only CAP_DAC_READ_SEARCH (bit 2), and no_new_privs.
        assert rst["CapEff"] == ["0000000000000004"] and rst["CapPrm"] == ["0000000000000004"], rst
        assert rst["NoNewPrivs"] == ["1"], rst
        fds = {int(f) for f in os.listdir(f"/proc/{reader[0]}/fd")}
        assert fds <= {0, 1, 2, 3}, fds
        assert os.readlink(f"/proc/{reader[0]}/fd/3").startswith("socket:")

        # 25 plain, 465 implicit TLS + AUTH, 587 STARTTLS + AUTH (accounts read as root).
        with smtplib.SMTP("127.0.0.1", srv.ports["smtp"], timeout=10) as c:
            c.sendmail("a@example.test", ["alice@example.test"], MSG)
        ctx = ssl._create_unverified_context()
        with smtplib.SMTP_SSL("127.0.0.1", srv.ports["submissions"], timeout=10, context=ctx) as c:
            c.login("bob@example.test", PASSWORDS["bob@example.test"])
            c.sendmail("bob@example.test", ["alice@example.test"], MSG)
        with smtplib.SMTP("127.0.0.1", srv.ports["submission"], timeout=10) as c:
            c.starttls(context=ctx)
            c.login("alice@example.test", PASSWORDS["alice@example.test"])
            c.sendmail("alice@example.test", ["bob@example.test"], MSG)

        inbox = srv.mail_root / "example.test" / "alice" / "new"
        wait_until(lambda: inbox.is_dir() and len(list(inbox.iterdir())) == 2, what="two messages for alice")
        wait_until(lambda: len(list((srv.mail_root / "example.test" / "bob" / "new").glob("*"))) == 1,
                   what="one message for bob")
        for path in [*inbox.iterdir(), *(srv.mail_root / "example.test" / "bob" / "new").iterdir()]:
            s = path.stat()
            assert (s.st_uid, s.st_gid) == (uid, gid), path
            assert stat.S_IMODE(s.st_mode) == 0o600, (path, oct(s.st_mode))
        for folder in (srv.mail_root, srv.mail_root / "example.test", inbox.parent, inbox):
            s = folder.stat()
            assert s.st_uid == uid, folder
        for folder in (inbox.parent, inbox):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
        for path in (srv.data_dir / "spool").rglob("*"):
            assert path.stat().st_uid == uid, path
        sock = srv.data_dir / "state" / "control.sock"
        s = sock.stat()
        assert s.st_uid == uid and stat.S_IMODE(s.st_mode) == 0o600, oct(s.st_mode)
        # Root's CLI still reaches the server through the socket.
        assert srv.cli("ban", "add", "192.0.2.7").returncode == 0
        assert "192.0.2.7" in srv.cli("ban", "list").stdout
        bans = srv.data_dir / "state" / "bans"
        wait_until(bans.exists, what="the bans file")
        s = bans.stat()
        assert s.st_uid == uid and stat.S_IMODE(s.st_mode) == 0o600, oct(s.st_mode)


def test_certbot_renewal_is_loaded_after_the_drop(reachable_dir):
    srv = make_server(reachable_dir)
    base = reachable_dir / "letsencrypt"
    use_certbot_certs(srv, base, 2001)
    with srv:
        port = srv.ports["submissions"]
        assert served_serial(port) == 2001
        # live/ is root-only: inotify cannot watch it as the service user; the periodic
        # check (through the reader) takes over, and says so.
        ev = srv.wait_event("watch.unavailable")
        assert ev["folder"].endswith("live")
        install_pair(base, 2002, 2)
        wait_until(lambda: served_serial(port) == 2002, timeout=20, interval=0.5, what="the renewed certificate")
        assert any(e["trigger"] == "file_change" for e in srv.log_events("tls.reloaded"))
        # SIGHUP (certbot's deploy hook: systemctl reload) reads through the reader too.
        install_pair(base, 2003, 3)
        srv.proc.send_signal(1)
        wait_until(lambda: served_serial(port) == 2003, timeout=20, interval=0.5, what="the certificate after SIGHUP")
        assert not srv.log_events("tls.reload_failed"), srv.log()


def test_accounts_added_while_running_are_read_as_root(reachable_dir):
    srv = make_server(reachable_dir)
    os.chmod(srv.accounts_path, 0o600)
    with srv:
        srv.wait_event("server.privileges")
        srv.cli("account", "add", "carol@example.test", "--password-stdin", input="carol-secret-3\n")
        assert stat.S_IMODE(srv.accounts_path.stat().st_mode) == 0o600
        assert srv.accounts_path.stat().st_uid == 0
        srv.wait_event("directory.reloaded")
        ctx = ssl._create_unverified_context()
        with smtplib.SMTP_SSL("127.0.0.1", srv.ports["submissions"], timeout=10, context=ctx) as c:
            c.login("carol@example.test", "carol-secret-3")


def test_unknown_user_refuses_to_start(reachable_dir):
    srv = Postern(reachable_dir, user="nosuchuser-postern")
    r = subprocess.run([*srv_cmd(srv)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "[server] user 'nosuchuser-postern' does not exist" in r.stderr
    assert "event=server.start_failed" in r.stderr


def test_explicit_root_keeps_root_with_a_warning(reachable_dir):
    with Postern(reachable_dir, user="root") as srv:
        assert proc_status(srv.proc.pid)["Uid"] == ["0"] * 4
        ev = srv.wait_event("server.runs_as_root")
        assert "fix" in ev


def test_unreachable_data_dir_is_named(tmp_path):
    # tmp_path's parents are root-only: the service user cannot reach data/.
    assert stat.S_IMODE(tmp_path.parent.parent.stat().st_mode) & 0o001 == 0
    srv = Postern(tmp_path / "inst", user=None)
    r = subprocess.run([*srv_cmd(srv)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert "is not usable by user 'postern'" in r.stderr and "search permission" in r.stderr, r.stderr


def srv_cmd(srv):
    from harness import BIN
    return [BIN, "serve", "--config", str(srv.config_path)]


def test_config_check_warns_about_a_missing_user(tmp_path):
    srv = Postern(tmp_path, user="nosuchuser-postern")
    r = srv.cli("config", "check", check=False)
    assert "warning: [server] user 'nosuchuser-postern' does not exist here" in r.stderr
    assert "server.user: nosuchuser-postern" in srv.cli("config", "show").stdout


LOW_PORTS = {"smtp": 25, "submissions": 465, "submission": 587}


def test_binds_the_real_ports_then_drops(reachable_dir):
    """Ports 25/465/587 need root (or CAP_NET_BIND_SERVICE) to bind; the service user then
    serves them. A loopback address of its own keeps clear of any local MTA."""
    host = "127.0.0.77"
    for port in LOW_PORTS.values():
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError as e:
                pytest.skip(f"{host}:{port} is not free here: {e}")
    uid, _ = service_user()
    srv = make_server(reachable_dir)
    text = srv.config_path.read_text()
    for service, port in LOW_PORTS.items():
        text = text.replace(f'address = "127.0.0.1:{srv.ports[service]}"', f'address = "{host}:{port}"')
    srv.config_path.write_text(text)
    srv.ports = {}   # start() probes 127.0.0.1 ports; these are elsewhere
    with srv:
        assert proc_status(srv.proc.pid)["Uid"] == [str(uid)] * 4
        ctx = ssl._create_unverified_context()
        with smtplib.SMTP(host, 25, timeout=10) as c:
            c.sendmail("a@example.test", ["alice@example.test"], MSG)
        with smtplib.SMTP_SSL(host, 465, timeout=10, context=ctx) as c:
            c.login("bob@example.test", PASSWORDS["bob@example.test"])
        with smtplib.SMTP(host, 587, timeout=10) as c:
            c.starttls(context=ctx)
            c.login("alice@example.test", PASSWORDS["alice@example.test"])
        listening = {e["address"] for e in srv.log_events("server.listening")}
        assert listening == {f"{host}:{p}" for p in LOW_PORTS.values()}, listening
