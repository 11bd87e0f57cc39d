"""Issue 13 item 5: mailbox quotas from docker-mailserver's dovecot-quotas.cf and
[directory] default_quota, enforced at SMTP with the real binary: 452 4.2.2 at RCPT when
the mailbox is full or the declared SIZE does not fit, 552 5.2.2 at the end of DATA when
the message fits no recipient, and a 5.2.2 bounce when delivery would take one mailbox
past its quota; reloaded when the file changes; checked by
`postern config check` with file:line."""

import re
import smtplib

from harness import Postern, wait_until

ACCOUNTS = {"alice@example.test": "alice-secret-1", "bob@example.test": "bob-secret-2",
            "carol@example.test": "carol-secret-3", "dave@example.test": "dave-secret-4"}
QUOTAS = 'quotas = "quotas.cf"'
FAST = '[queue]\nretry_min = "1s"\nretry_max = "2s"\n'


def server(tmp_path, quotas, directory_toml=QUOTAS):
    s = Postern(tmp_path / "p", accounts=ACCOUNTS, directory_toml=directory_toml, extra_toml=FAST)
    (s.dir / "quotas.cf").write_text(quotas)
    return s


def rcpt(port, to, size=None, mail_from="someone@remote.test"):
    """MAIL FROM (with SIZE= when given) and one RCPT; returns the RCPT reply (code, text)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        code, msg = c.mail(mail_from, [f"SIZE={size}"] if size is not None else [])
        assert code == 250, msg
        return c.rcpt(to)


def send(port, to, body_bytes, mail_from="someone@remote.test", subject="q", expect=250):
    """One message of about `body_bytes` to the addresses `to` (str or list), without SIZE=
    (smtplib's sendmail would add it). Returns the reply to DATA."""
    line = b"x" * 70 + b"\r\n"
    msg = f"Subject: {subject}\r\n\r\n".encode() + line * (body_bytes // len(line))
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.ehlo("client.test")
        assert c.mail(mail_from)[0] == 250
        for addr in [to] if isinstance(to, str) else to:
            assert c.rcpt(addr)[0] == 250
        code, resp = c.data(msg)
        assert code == expect, resp
        return code, resp


def stored_size(path):
    return int(re.search(r",S=(\d+)", path.name).group(1))


def test_rcpt_and_delivery_enforce_the_quota(tmp_path):
    # carol's mailbox is already past her quota when the server starts (mail from an
    # earlier server: a name without S= counts with its file size, .Sent counts too).
    with server(tmp_path, "# docker-mailserver\nalice@example.test:10K\ncarol@example.test:1k\n") as s:
        port = s.ports["smtp"]
        code, msg = rcpt(port, "alice@example.test", size=20000)
        assert (code, msg) == (452, b"4.2.2 <alice@example.test>: Mailbox full")
        assert rcpt(port, "bob@example.test", size=20000)[0] == 250   # no quota, no default
        s.wait_event("smtp.over_quota", to="alice@example.test", quota="10240", size="20000")

        # A delivery counts at once: the next RCPT sees it without rescanning.
        send(port, "alice@example.test", 6000)
        used = stored_size(s.wait_mail("alice@example.test")[0])
        assert 6000 < used < 7000
        assert rcpt(port, "alice@example.test", size=10240 - used + 1)[0] == 452
        assert rcpt(port, "alice@example.test", size=10240 - used)[0] == 250

        # No SIZE: RCPT passes. A message that fits no recipient is refused at the end of DATA.
        assert send(port, "alice@example.test", 5000, expect=552) == (
            552, b"5.2.2 Mailbox full: the message exceeds the quota of every recipient")
        s.wait_event("smtp.over_quota", stage="data")

        # One that fits another recipient is accepted; delivery to alice would exceed: a
        # 5.2.2 bounce to the local sender.
        send(port, ["alice@example.test", "dave@example.test"], 5000, mail_from="bob@example.test", subject="too big")
        s.wait_mail("dave@example.test")
        s.wait_event("delivery.over_quota", to="alice@example.test")
        s.wait_event("delivery.bounced", to="alice@example.test", timeout=20)
        dsn = s.wait_mail("bob@example.test")[0].read_bytes()
        assert b"Status: 5.2.2" in dsn and b"mailbox full" in dsn
        assert len(s.maildir("alice@example.test")) == 1

    for sub in ("cur", "new", ".Sent/cur"):
        (s.mail_root / "example.test" / "carol" / sub).mkdir(parents=True, exist_ok=True)
    (s.mail_root / "example.test" / "carol" / ".Sent" / "cur" / "1.M1P1Q1.old:2,S").write_bytes(b"y" * 1500)
    with s:
        assert rcpt(s.ports["smtp"], "carol@example.test")[0] == 452   # full, no SIZE needed
        assert rcpt(s.ports["smtp"], "dave@example.test")[0] == 250
    rejected = s.log_events("smtp.rejected")
    assert any(e.get("counter") == "smtp.over_quota" and e.get("code") == "452" for e in rejected)


def test_default_quota_zero_is_unlimited_and_reload(tmp_path):
    with server(tmp_path, "dave@example.test:0\n", directory_toml=QUOTAS + '\ndefault_quota = "1K"') as s:
        port = s.ports["smtp"]
        assert rcpt(port, "bob@example.test", size=5000)[0] == 452    # not listed: the default
        assert rcpt(port, "dave@example.test", size=5000)[0] == 250   # 0: no limit
        (s.dir / "quotas.cf").write_text("dave@example.test:0\nbob@example.test:1M\n")
        s.wait_event("directory.reloaded", quotas="2")
        assert rcpt(port, "bob@example.test", size=5000)[0] == 250
        # A broken edit keeps the last good quotas.
        (s.dir / "quotas.cf").write_text("dave@example.test:0\nbob@example.test:lots\n")
        s.wait_event("directory.reload_failed")
        assert rcpt(port, "bob@example.test", size=5000)[0] == 250


def test_config_check_and_show(tmp_path):
    s = server(tmp_path, "alice@example.test:50M\nbob@example.test:50X\n")
    r = s.cli("config", "check", check=False)
    assert r.returncode == 1
    assert f"{s.dir / 'quotas.cf'}:2: error: bad size '50X'" in r.stderr
    (s.dir / "quotas.cf").write_text("alice@example.test:50M\nnobody@example.test:1G\n")
    r = s.cli("config", "check")
    assert f"{s.dir / 'quotas.cf'}:2: note: nobody@example.test is not an account" in r.stderr
    out = s.cli("config", "show").stdout
    assert f"directory.quotas: {s.dir / 'quotas.cf'}" in out
    assert "directory.default_quota: 0 (no limit)" in out

    s.directory_toml = QUOTAS + '\ndefault_quota = "lots"'
    s._write_config()
    r = s.cli("config", "check", check=False)
    assert r.returncode == 1 and "'default_quota' must be a size" in r.stderr
