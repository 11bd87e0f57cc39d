"""Issue 16 item 5: `postern import docker-mailserver DIR` on fixture folders modelled on
docker-mailserver's documented set-ups (tests/fixtures/dms-*). Checks the TOML key by key,
the exact list of lines not carried over, the smtps -> submissions warning, that --dry-run
writes nothing, that the result passes `postern config check`, and that a server started
from it takes mail for the imported accounts, which log in with their old passwords
(including over PROXY + implicit TLS on 465, the seed's set-up)."""

import pwd
import re
import shutil
import smtplib
import socket
import ssl
import stat
import subprocess
import tomllib
from email.message import EmailMessage
from pathlib import Path

import pytest

from harness import BIN, free_port, stop_process, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# Every line of dms-proxy that is not carried over, as file:line (a whole file: its path).
# This build's configuration has no [[route]] or IMAP: when those land the
# importer writes them (it asks the configuration loader) and this list shrinks.
PROXY_NOT_CARRIED = {
    "../mailserver.env:10",   # POSTMASTER_ADDRESS
    "../mailserver.env:27",   # ENABLE_IMAP=1
    "postfix-main.cf:4",      # smtpd_banner
    "postfix-main.cf:6",      # smtpd_sender_restrictions (continued on line 7)
    "postfix-main.cf:8",      # disable_vrfy_command
    "postfix-master.cf:3",    # submission/inet/smtpd_reject_unlisted_recipient
    "postfix-accounts.cf:3",  # no hash
    "postfix-virtual.cf:5",   # no target
    "postfix-aliases.cf:2",   # /dev/null
    "postfix-regexp.cf:2",    # a real pattern
    "dovecot.cf:2", "dovecot.cf:3", "dovecot.cf:4",
    "postfix-relaymap.cf:2",   # a domain excluded from the relay
    "opendkim/TrustedHosts",
}
PROXY_MAPPED = {
    "../mailserver.env:4", "../mailserver.env:17", "../mailserver.env:32", "../mailserver.env:41",
    "../mailserver.env:42", "../mailserver.env:43", "../mailserver.env:54",
    "postfix-main.cf:2", "postfix-main.cf:3", "postfix-main.cf:5",
    "postfix-master.cf:2",
    "postfix-accounts.cf:1", "postfix-accounts.cf:2",
    "postfix-virtual.cf:2", "postfix-virtual.cf:3", "postfix-virtual.cf:4",
    "postfix-aliases.cf:1", "postfix-regexp.cf:1", "dovecot.cf:1",
    "dovecot-quotas.cf:1",   # [directory] quotas: quotas.cf
    # [[route]]: RELAY_* becomes the default route, the relay map a sender-domain route.
    "../mailserver.env:79", "../mailserver.env:80", "../mailserver.env:81", "../mailserver.env:82",
    "postfix-relaymap.cf:1", "postfix-sasl-password.cf:1",
    # [dkim]: the keys are copied to dkim/<domain>/<selector>.key; the tables say nothing more.
    "opendkim/KeyTable:1", "opendkim/SigningTable:1",
    "opendkim/keys/example.com/mail.private",
    "rspamd/dkim/ed25519-mail-example.org.private.txt",
}
SECRETS = ["relay-password-do-not-print", "mailgun-secret-do-not-print", "$6$"]
PASSWORDS = {"user1@example.com": "user1-old-password", "user2@example.com": "user2-old-password"}


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed(cert, key, cn):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "30",
            "-subj", f"/CN={cn}", "-addext", f"subjectAltName=DNS:{cn},DNS:localhost", "-keyout", str(key),
            "-out", str(cert))


def prepare_proxy(tmp_path):
    """dms-proxy copied, with its certificate and DKIM keys made now; returns the config folder."""
    root = tmp_path / "dms"
    shutil.copytree(FIXTURES / "dms-proxy", root)
    cfg = root / "config"
    (cfg / "ssl").mkdir()
    self_signed(cfg / "ssl" / "cert.pem", cfg / "ssl" / "key.pem", "mail.example.com")
    keys = cfg / "opendkim" / "keys" / "example.com"
    keys.mkdir(parents=True)
    openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", str(keys / "mail.private"))
    (keys / "mail.txt").write_text('mail._domainkey IN TXT ( "v=DKIM1; k=rsa; p=..." )\n')
    (cfg / "rspamd" / "dkim").mkdir(parents=True)
    openssl("genpkey", "-algorithm", "ed25519", "-out", str(cfg / "rspamd" / "dkim" / "ed25519-mail-example.org.private.txt"))
    return cfg


def prepare_submissions(tmp_path):
    root = tmp_path / "dms2"
    shutil.copytree(FIXTURES / "dms-submissions", root)
    cfg = root / "config"
    (cfg / "ssl").mkdir()
    self_signed(cfg / "ssl" / "mail.example.net-cert.pem", cfg / "ssl" / "mail.example.net-key.pem", "mail.example.net")
    return cfg


def run_import(cfg, *args):
    return subprocess.run([BIN, "import", "docker-mailserver", str(cfg), *args], capture_output=True, text=True,
                          timeout=60)


def config_check(path):
    """`postern config check` on the generated file. Once the configuration has [server]
    user, the import writes user = "postern" (the user the install creates); on a test host
    without that user the check runs on a copy that names root instead, nothing else changed."""
    text = Path(path).read_text()
    if 'user = "postern"' in text:
        try:
            pwd.getpwnam("postern")
        except KeyError:
            path = Path(path).with_name("postern-root.toml")
            path.write_text(text.replace('user = "postern"', 'user = "root"').replace('group = "postern"', 'group = "root"'))
    return subprocess.run([BIN, "config", "check", "--config", str(path)], capture_output=True, text=True, timeout=60)


def report(stdout):
    """{kind: {location: rest}} from the report lines (two spaces between fields)."""
    out = {"mapped": {}, "not carried over": {}, "warning": [], "note": []}
    for line in stdout.splitlines():
        parts = line.split("  ", 2)
        if parts[0] in ("mapped", "not carried over"):
            assert parts[1] not in out[parts[0]], f"two report lines for {parts[1]}"
            out[parts[0]][parts[1]] = parts[2]
        elif parts[0] in ("warning", "note"):
            out[parts[0]].append("  ".join(parts[1:]))
    return out


def test_dry_run_writes_nothing(tmp_path):
    cfg = prepare_proxy(tmp_path)
    out = tmp_path / "out"
    r = run_import(cfg, "--output", str(out / "postern.toml"), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert not out.exists()
    assert f"would write  {out}/postern.toml  (mode 0600)" in r.stdout
    assert f"would write  {out}/tls/key.pem  (mode 0600)" in r.stdout
    assert "(dry run: nothing written)" in r.stdout
    toml_text = r.stdout.split("(dry run: nothing written) ---\n", 1)[1]
    assert tomllib.loads(toml_text)["hostname"] == "mail.example.com"
    assert set(report(r.stdout)["not carried over"]) == PROXY_NOT_CARRIED


def test_proxy_fixture_report_and_toml(tmp_path):
    cfg = prepare_proxy(tmp_path)
    out = tmp_path / "out"
    r = run_import(cfg, "--output", str(out / "postern.toml"))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = report(r.stdout)
    assert set(rep["not carried over"]) == PROXY_NOT_CARRIED, r.stdout
    assert set(rep["mapped"]) == PROXY_MAPPED, r.stdout
    assert f"summary  {len(PROXY_MAPPED)} mapped, {len(PROXY_NOT_CARRIED)} not carried over" in r.stdout
    for secret in SECRETS:
        assert secret not in r.stdout + r.stderr

    # The seed's line: mapped to the submissions listener, with a warning naming the rename.
    assert rep["mapped"]["postfix-master.cf:2"] == (
        'smtps/inet/smtpd_upstream_proxy_protocol=haproxy -> [[listener]] service="submissions" '
        'proxy_protocol="required"')
    smtps_warnings = [w for w in rep["warning"] if w.startswith("postfix-master.cf:2  ")]
    assert len(smtps_warnings) == 1
    assert "'smtps' is the old name of 'submissions' (port 465" in smtps_warnings[0]
    assert "ENABLE_IMAP=1: Postern has no IMAP yet" in rep["not carried over"]["../mailserver.env:27"]
    assert rep["mapped"]["../mailserver.env:82"].startswith("RELAY_PASSWORD=(not shown) -> [[route]] auth_file")
    assert rep["mapped"]["postfix-relaymap.cf:1"].endswith(
        '[[route]] sender_domains = ["example.org"] relay = "smtp.mailgun.example:587" tls = "starttls" '
        'auth_file = "relay-auth-example.org"')
    assert "note  environment read from ../mailserver.env" in r.stdout

    conf = tomllib.loads((out / "postern.toml").read_text())
    assert conf["hostname"] == "mail.example.com"
    assert conf["directory"] == {"accounts": "accounts.cf", "aliases": "virtual.cf", "quotas": "quotas.cf"}
    assert conf["mailbox"] == {"root": "/var/mail"}
    assert conf["tls"] == {"cert": "tls/cert.pem", "key": "tls/key.pem"}
    assert conf["proxy_protocol"] == {"trusted_networks": ["172.16.0.0/12", "10.0.0.0/8"], "header_timeout": "10s"}
    assert conf["smtp"] == {"max_message_size": 20480000}
    assert conf["listener"] == [
        {"service": "smtp", "address": "0.0.0.0:25", "proxy_protocol": "required"},
        {"service": "submission", "address": "0.0.0.0:587", "proxy_protocol": "off"},
        {"service": "submissions", "address": "0.0.0.0:465", "proxy_protocol": "required"},
    ]
    # The relay map's sender route first, then RELAY_HOST as the default route.
    assert conf["route"] == [
        {"sender_domains": ["example.org"], "relay": "smtp.mailgun.example:587", "tls": "starttls",
         "auth_file": "relay-auth-example.org"},
        {"relay": "smtp.relay.example:587", "tls": "starttls", "auth_file": "relay-auth"},
    ], conf["route"]
    for name, line in (("relay-auth", "relay-user:relay-password-do-not-print"),
                       ("relay-auth-example.org", "postmaster@example.org:mailgun-secret-do-not-print")):
        f = out / name
        assert f.read_text().splitlines()[0] == line
        assert f.stat().st_mode & 0o777 == 0o600
    assert conf["dkim"] == {"keys": "dkim"}
    if "server" in conf:   # once the configuration has [server] user
        assert conf["server"]["user"] == "postern"

    # Files: what Postern reads as it is, 0600 in 0700 folders.
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "accounts.cf", "dkim/example.com/mail.key", "dkim/example.org/mail.key", "postern.toml", "quotas.cf",
        "relay-auth", "relay-auth-example.org", "tls/cert.pem", "tls/key.pem", "virtual.cf"]
    assert (out / "quotas.cf").read_text() == "user1@example.com:50M\n"
    for p in [out, out / "tls", out / "dkim" / "example.com", out / "dkim" / "example.org"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o700, p
    for p in out.rglob("*"):
        if p.is_file():
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    assert (out / "tls" / "key.pem").read_bytes() == (cfg / "ssl" / "key.pem").read_bytes()
    accounts = (out / "accounts.cf").read_text().splitlines()
    original = (cfg / "postfix-accounts.cf").read_text().splitlines()
    assert accounts[:2] == original[:2]   # hashes unchanged
    assert accounts[2] == "# not carried over by postern import: broken@example.com|"
    virtual = (out / "virtual.cf").read_text()
    assert "root@mail.example.com user1@example.com\n" in virtual
    assert "sales@example.com user2@example.com\n" in virtual

    check = config_check(out / "postern.toml")
    assert check.returncode == 0, check.stderr


def test_refuses_to_overwrite_without_force(tmp_path):
    cfg = prepare_proxy(tmp_path)
    out = tmp_path / "out" / "postern.toml"
    assert run_import(cfg, "--output", str(out)).returncode == 0
    out.write_text("# edited by hand\n")
    r = run_import(cfg, "--output", str(out))
    assert r.returncode == 1
    assert f"postern: {out} exists" in r.stderr and "--force" in r.stderr
    assert out.read_text() == "# edited by hand\n"
    r = run_import(cfg, "--output", str(out), "--force")
    assert r.returncode == 0, r.stderr
    assert out.read_text().startswith("# Written by `postern import docker-mailserver`")


def test_submissions_fixture_env_inside_folder_and_default_proxies(tmp_path):
    cfg = prepare_submissions(tmp_path)
    out = tmp_path / "out" / "postern.toml"
    r = run_import(cfg, "--output", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    rep = report(r.stdout)
    assert rep["not carried over"] == {}, r.stdout
    assert "note  environment read from mailserver.env" in r.stdout
    assert not any("old name" in w for w in rep["warning"])
    assert any(w.startswith("no list of trusted proxies was found") for w in rep["warning"]), rep["warning"]
    assert not any("IMAP" in n for n in rep["note"])   # ENABLE_IMAP=0
    assert rep["mapped"]["mailserver.env:3"] == "ENABLE_IMAP=0 -> no IMAP listeners"
    assert {f"postfix-accounts.cf:{n}" for n in range(3, 8)} <= set(rep["mapped"])
    text = out.read_text()
    assert "# CHANGE: the addresses of your HAProxy" in text
    conf = tomllib.loads(text)
    assert conf["log_level"] == "debug"
    assert conf["tls"] == {"cert": "tls/cert.pem", "key": "tls/key.pem"}
    assert conf["proxy_protocol"] == {"trusted_networks": ["127.0.0.0/8", "::1/128"]}
    assert [(l["service"], l["proxy_protocol"]) for l in conf["listener"]] == [
        ("smtp", "required"), ("submission", "required"), ("submissions", "required")]
    check = config_check(out)
    assert check.returncode == 0, check.stderr


# ---- a server started from the imported configuration ----------------------------------

class ProxiedSMTP(smtplib.SMTP):
    """smtplib over a connection that starts with a PROXY v1 header."""

    def __init__(self, header, *args, **kwargs):
        self._proxy_header = header
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        s = socket.create_connection((host, port), timeout)
        s.sendall(self._proxy_header)
        return s


class ProxiedSMTP_SSL(smtplib.SMTP_SSL):
    """Implicit TLS after a PROXY v1 header (HAProxy in front of port 465)."""

    def __init__(self, header, *args, **kwargs):
        self._proxy_header = header
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):
        s = socket.create_connection((host, port), timeout)
        s.sendall(self._proxy_header)
        return self.context.wrap_socket(s, server_hostname=self._host)


def tls_context():
    c = ssl.create_default_context()
    c.check_hostname, c.verify_mode = False, ssl.CERT_NONE
    return c


def message(sender, to, subject):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = sender, to, subject
    m.set_content(f"{subject}\n")
    return m


def patched_for_test(text, tmp_path, ports):
    """The imported TOML on loopback ports, with a private data folder and mail root, and
    the test itself among the trusted proxies."""
    text = re.sub(r'address = "0\.0\.0\.0:(\d+)"', lambda m: f'address = "127.0.0.1:{ports[int(m.group(1))]}"', text)
    text = text.replace('data_dir = "/var/lib/postern"', f'data_dir = "{tmp_path}/data"')
    text = text.replace('root = "/var/mail"', f'root = "{tmp_path}/mail"')
    text = text.replace("trusted_networks = [", 'trusted_networks = ["127.0.0.1/32", ', 1)
    text = text.replace('user = "postern"', 'user = "root"').replace('group = "postern"', 'group = "root"')
    return text


def maildir(tmp_path, address):
    local, domain = address.split("@")
    d = tmp_path / "mail" / domain / local / "new"
    return sorted(d.iterdir()) if d.exists() else []


def test_imported_server_takes_mail_and_old_passwords(tmp_path):
    cfg = prepare_proxy(tmp_path)
    out = tmp_path / "out" / "postern.toml"
    r = run_import(cfg, "--output", str(out))
    assert r.returncode == 0, r.stderr
    ports = {25: free_port(), 587: free_port(), 465: free_port()}
    out.write_text(patched_for_test(out.read_text(), tmp_path, ports))
    check = subprocess.run([BIN, "config", "check", "--config", str(out)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr

    log = open(tmp_path / "postern.log", "wb")
    proc = subprocess.Popen([BIN, "serve", "--config", str(out)], stdout=log, stderr=log)
    try:
        def listening(port):
            if proc.poll() is not None:
                raise AssertionError((tmp_path / "postern.log").read_text())
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return True
            except OSError:
                return False
        for port in ports.values():
            wait_until(lambda: listening(port), timeout=15, what=f"port {port}")

        # Port 25 behind the proxy: mail from outside for an account, an alias, the converted
        # regexp alias and the converted local alias.
        hdr = f"PROXY TCP4 203.0.113.7 127.0.0.1 40000 {ports[25]}\r\n".encode()
        with ProxiedSMTP(hdr, "127.0.0.1", ports[25], timeout=20) as s:
            s.ehlo("client.remote.example")
            for to in ["user1@example.com", "info@example.com", "sales@example.com", "root@mail.example.com"]:
                s.send_message(message("someone@remote.example", to, f"inbound for {to}"))

        # Submission with STARTTLS, logging in with the password from docker-mailserver days.
        with smtplib.SMTP("127.0.0.1", ports[587], timeout=20) as s:
            s.starttls(context=tls_context())
            s.login("user2@example.com", PASSWORDS["user2@example.com"])
            s.send_message(message("user2@example.com", "user1@example.com", "from user2 on 587"))

        # 465 behind the proxy: the listener the old smtps override was about.
        hdr = f"PROXY TCP4 198.51.100.9 127.0.0.1 40001 {ports[465]}\r\n".encode()
        with ProxiedSMTP_SSL(hdr, "127.0.0.1", ports[465], timeout=20, context=tls_context()) as s:
            s.login("user1@example.com", PASSWORDS["user1@example.com"])
            s.send_message(message("user1@example.com", "user2@example.com", "from user1 on 465"))
        with ProxiedSMTP_SSL(hdr, "127.0.0.1", ports[465], timeout=20, context=tls_context()) as s:
            with pytest.raises(smtplib.SMTPAuthenticationError):
                s.login("user1@example.com", "not-the-old-password")

        wait_until(lambda: len(maildir(tmp_path, "user1@example.com")) >= 4, what="mail for user1")
        wait_until(lambda: len(maildir(tmp_path, "user2@example.com")) >= 2, what="mail for user2")
        subjects1 = sorted(re.search(rb"^Subject: (.*)$", p.read_bytes(), re.M).group(1).decode()
                           for p in maildir(tmp_path, "user1@example.com"))
        assert subjects1 == ["from user2 on 587", "inbound for info@example.com", "inbound for root@mail.example.com",
                             "inbound for user1@example.com"]
        subjects2 = sorted(re.search(rb"^Subject: (.*)$", p.read_bytes(), re.M).group(1).decode()
                           for p in maildir(tmp_path, "user2@example.com"))
        assert subjects2 == ["from user1 on 465", "inbound for sales@example.com"]
        # The Received header names the real client, not the proxy.
        first = [p for p in maildir(tmp_path, "user1@example.com") if b"inbound for user1" in p.read_bytes()][0]
        assert b"203.0.113.7" in first.read_bytes()
    finally:
        code, killed = stop_process(proc)
        log.close()
    assert not killed and code == 0, (tmp_path / "postern.log").read_text()[-4000:]
