"""Issue 2: `postern config check|show` diagnostics and the account/alias commands."""

import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest

from harness import BIN, Postern, wait_until

BASE = """hostname = "mail.example.test"
data_dir = "data"
[directory]
accounts = "accounts.cf"
[[listener]]
service = "smtp"
address = "127.0.0.1:2525"
"""


def check(tmp_path, text, extra_files=("accounts.cf",)):
    for f in extra_files:
        (tmp_path / f).write_text("")
    cfg = tmp_path / "postern.toml"
    cfg.write_text(text)
    r = subprocess.run([BIN, "config", "check", "--config", str(cfg)], capture_output=True, text=True, timeout=30)
    return r, str(cfg)


def test_valid_config(tmp_path):
    r, _ = check(tmp_path, BASE)
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


@pytest.mark.parametrize("text,line,col,needle", [
    (BASE + "colour = \"blue\"\n", 8, 1, "unknown setting 'colour'"),
    (BASE.replace('hostname = "mail.example.test"', 'hostnme = "x"'), 1, 1, "did you mean 'hostname'"),
    (BASE + "[smtp]\nmax_recipients = \"many\"\n", 9, 18, "'max_recipients' must be an integer"),
    (BASE.replace('"127.0.0.1:2525"', '"127.0.0.1:99999"'), 7, 11, "bad listen address"),
    (BASE + "[proxy_protocol]\ntrusted_networks = [\"10.0.0.0/33\"]\n", 9, 21, "bad network"),
    (BASE + "[[listener]]\nservice = \"smtp\"\naddress = \"127.0.0.1:2525\"\n", 8, 1, "collides with"),
    (BASE.replace('service = "smtp"', 'service = "smpt"'), 6, 11, "did you mean 'smtp'"),
    (BASE.replace('service = "smtp"', 'service = "imap"'), 6, 11, "not implemented"),
    (BASE.replace('accounts = "accounts.cf"', 'accounts = "missing.cf"'), 4, 12, "cannot read accounts file"),
    (BASE + "[smtp\n", 8, 6, ""),
])
def test_config_errors_have_positions(tmp_path, text, line, col, needle):
    r, cfg = check(tmp_path, text)
    assert r.returncode == 1, r.stderr
    assert f"{cfg}:{line}:{col}: error:" in r.stderr, r.stderr
    assert needle in r.stderr


def test_smtps_is_accepted_with_a_warning(tmp_path):
    cert = tmp_path / "c.pem"
    key = tmp_path / "k.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=x", "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    text = BASE + f'[tls]\ncert = "{cert}"\nkey = "{key}"\n[[listener]]\nservice = "smtps"\naddress = "127.0.0.1:4650"\n'
    r, cfg = check(tmp_path, text)
    assert r.returncode == 0, r.stderr
    assert f"{cfg}:12:11: warning: service 'smtps' is an old name: it is now 'submissions' (port 465" in r.stderr
    show = subprocess.run([BIN, "config", "show", "--config", cfg], capture_output=True, text=True)
    assert show.returncode == 0
    assert "listener submissions" in show.stdout and "(written as 'smtps')" in show.stdout
    assert "max_message_size: 26214400" in show.stdout and "tls: implicit" in show.stdout


def test_serve_refuses_a_broken_config(tmp_path):
    r, cfg = check(tmp_path, BASE + "bogus = 1\n")
    s = subprocess.run([BIN, "serve", "--config", cfg], capture_output=True, text=True, timeout=30)
    assert s.returncode == 1
    assert f"{cfg}:8:1: error: unknown setting 'bogus'" in s.stderr


def test_account_added_by_cli_logs_in_without_restart(tmp_path):
    with Postern(tmp_path / "p") as s:
        r = s.cli("account", "add", "carol@example.test", "--password-stdin", input="carol-pw\n")
        assert "added" in r.stdout
        assert "carol@example.test|{SHA512-CRYPT}$6$" in s.accounts_path.read_text()
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

        def try_login():
            with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"], timeout=10, context=ctx) as c:
                try:
                    c.login("carol@example.test", "carol-pw")
                    return True
                except smtplib.SMTPAuthenticationError:
                    return False
        wait_until(try_login, timeout=10, interval=0.3, what="carol can log in")
        s.wait_event("directory.reloaded")
        # alias commands edit the aliases file and take effect the same way
        s.cli("alias", "add", "sales@example.test", "carol@example.test")
        assert "sales@example.test carol@example.test" in s.cli("alias", "list").stdout
        listed = s.cli("account", "list").stdout
        assert "carol@example.test SHA512-CRYPT" in listed
        s.cli("account", "del", "carol@example.test")
        assert "carol@example.test" not in s.accounts_path.read_text()
        bad = s.cli("account", "del", "carol@example.test", check=False)
        assert bad.returncode == 1 and "carol@example.test" in bad.stderr


def test_bad_accounts_line_keeps_last_good_data(tmp_path):
    with Postern(tmp_path / "p") as s:
        with open(s.accounts_path, "a") as f:
            f.write("broken line without separator\n")
        ev = s.wait_event("directory.reload_failed")
        assert "accounts.cf:3" in ev["reason"]
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"], timeout=10, context=ctx) as c:
            c.login("alice@example.test", "alice-secret-1")


def test_docker_mailserver_files_work_unchanged(tmp_path):
    """Files in the docker-mailserver formats, with a hash made by Dovecot's doveadm."""
    dms = Path(__file__).resolve().parents[1] / "data" / "dms"
    pw = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", "dms-secret"], capture_output=True, text=True)
    assert pw.returncode == 0, pw.stderr
    accounts = f"dms@example.test|{pw.stdout.strip()}\n" + (dms / "postfix-accounts.cf").read_text()
    aliases = (dms / "postfix-virtual.cf").read_text()
    s = Postern(tmp_path / "p", accounts={}, aliases=aliases)
    s.accounts_path.write_text(accounts)
    with s:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"], timeout=10, context=ctx) as c:
            c.login("dms@example.test", "dms-secret")
            c.sendmail("dms@example.test", ["dms@example.test"], b"Subject: dms\r\n\r\nhi\r\n")
        s.wait_mail("dms@example.test")


def test_json_logs_carry_the_contract_keys(tmp_path):
    import json
    with Postern(tmp_path / "p", extra_toml="") as s:
        pass
    cfg = s.config_path.read_text().replace('data_dir = "data"', 'data_dir = "data"\nlog_format = "json"')
    s.config_path.write_text(cfg)
    s.log_path.unlink()
    with s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
            c.sendmail("a@remote.test", ["alice@example.test"], b"Subject: j\r\n\r\nx\r\n")
        s.wait_mail("alice@example.test")
    events = [json.loads(line) for line in s.log().splitlines() if line.startswith("{")]
    assert events and all({"ts", "level", "event"} <= e.keys() for e in events)
    acc = [e for e in events if e["event"] == "smtp.accepted"][0]
    assert acc["listener"] == "smtp" and acc["client"].startswith("127.0.0.1:") and acc["status"] == "queued"
    assert isinstance(acc["conn"], int) and isinstance(acc["size"], int) and acc["to"] == "alice@example.test"
    assert acc["queue_id"] and acc["from"] == "a@remote.test"


def test_password_change_takes_effect_despite_the_login_cache(tmp_path):
    with Postern(tmp_path / "p") as s:
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

        def login(pw):
            with smtplib.SMTP_SSL("127.0.0.1", s.ports["submissions"], timeout=10, context=ctx) as c:
                try:
                    c.user, c.password = "alice@example.test", pw
                    return c.auth("PLAIN", c.auth_plain)[0] == 235
                except smtplib.SMTPAuthenticationError:
                    return False
        assert login("alice-secret-1") and login("alice-secret-1")   # second one from the cache
        s.cli("account", "passwd", "alice@example.test", "--password-stdin", input="new-secret\n")
        wait_until(lambda: login("new-secret"), timeout=10, interval=0.2, what="the new password")
        assert not login("alice-secret-1")


def test_config_check_reads_the_directory_files(tmp_path):
    s = Postern(tmp_path / "p")
    good = s.accounts_path.read_text().splitlines()[0]
    s.accounts_path.write_text(good + "|quota=1G\n")
    r = s.cli("config", "check")
    assert f"{s.accounts_path}:1: note: ignoring 1 extra" in r.stderr
    s.accounts_path.write_text(good + "\nnot an account line\n")
    r = s.cli("config", "check", check=False)
    assert r.returncode == 1 and f"{s.accounts_path}:2: error:" in r.stderr
    s.accounts_path.write_text(good + "\n")
    s.aliases_path.write_text("alias-without-target@example.test\n")
    r = s.cli("config", "check", check=False)
    assert r.returncode == 1 and f"{s.aliases_path}:1: error:" in r.stderr
