"""Issue 11: the durable queue drives delivery. A deferred message keeps its schedule
across restarts, operators see and act on it with `postern queue`, a failure for good or
an expired lifetime becomes one RFC 3464 notification to the sender (never a 30 s loop),
and Maildir delivery never writes through a symbolic link."""

import shutil
import smtplib
import ssl

from harness import Postern, wait_until

FAST = '[queue]\nretry_min = "1s"\nretry_max = "2s"\n'


def send(port, to, mail_from="someone@remote.test", subject="queued"):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.sendmail(mail_from, [to], f"Subject: {subject}\r\nX-Test: {subject}\r\n\r\nbody of {subject}\r\n".encode())


def submit(server, to, subject):
    """AUTH as alice on submission (STARTTLS) and send to `to` (may be remote)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=10) as c:
        c.starttls(context=ctx)
        c.login("alice@example.test", "alice-secret-1")
        c.sendmail("alice@example.test", [to], f"Subject: {subject}\r\n\r\nto {to}\r\n".encode())


def queue_ids(server):
    out = server.cli("queue", "list").stdout
    return [line.split()[0] for line in out.splitlines() if line and not line.startswith((" ", "0 ", "1 "))
            and "message" not in line]


def hold_mailbox(server, address):
    """Puts a regular file where the mailbox folder belongs: delivery must defer."""
    local, domain = address.split("@")
    box = server.mail_root / domain / local
    if box.exists():
        shutil.rmtree(box)
    box.parent.mkdir(parents=True, exist_ok=True)
    box.write_text("not a folder\n")
    return box


def test_deferred_message_is_listed_retried_and_delivered(tmp_path):
    with Postern(tmp_path / "p", extra_toml='[queue]\nretry_min = "1h"\nretry_max = "2h"\n') as s:
        box = hold_mailbox(s, "bob@example.test")
        send(s.ports["smtp"], "bob@example.test", subject="held")
        ev = s.wait_event("delivery.deferred", to="bob@example.test")
        assert ev["attempts"] == "1" and int(ev["retry_in"]) >= 3500, ev
        ids = queue_ids(s)
        assert len(ids) == 1
        shown = s.cli("queue", "show", ids[0]).stdout
        assert "to=<bob@example.test> local pending attempts=1" in shown
        assert "not a folder" in shown and "from=<someone@remote.test>" in shown
        box.unlink()
        assert "scheduled now" in s.cli("queue", "retry", ids[0]).stdout
        mail = s.wait_mail("bob@example.test")
        assert b"X-Test: held" in mail[0].read_bytes()
        wait_until(lambda: queue_ids(s) == [], timeout=10, what="an empty queue")
        r = s.cli("queue", "show", ids[0], check=False)
        assert r.returncode == 1 and "no message" in r.stderr


def test_schedule_survives_restart_and_offline_commands(tmp_path):
    s = Postern(tmp_path / "p", extra_toml='[queue]\nretry_min = "1h"\nretry_max = "2h"\n')
    s.start()
    try:
        hold_mailbox(s, "bob@example.test")
        send(s.ports["smtp"], "bob@example.test", subject="restart")
        s.wait_event("delivery.deferred", to="bob@example.test")
        qid = queue_ids(s)[0]
        before = s.cli("queue", "show", qid).stdout
        assert s.stop() == 0
        # No server: the command line reads the spool itself.
        offline = s.cli("queue", "show", qid).stdout
        assert "attempts=1" in offline and "next=" in offline
        assert before.split("next=")[1].split()[0] == offline.split("next=")[1].split()[0]
        r = s.cli("queue", "retry", qid, check=False)
        assert r.returncode == 1 and "needs the running server" in r.stderr
        s.start()
        # Not retried at start: the next attempt is an hour away.
        shown = s.cli("queue", "show", qid).stdout
        assert "attempts=1" in shown, shown
        assert s.cli("queue", "delete", qid).stdout.strip() == f"{qid} deleted"
        wait_until(lambda: queue_ids(s) == [], timeout=10, what="an empty queue")
        s.wait_event("queue.deleted", queue_id=qid)
    finally:
        s.stop()


def test_remote_recipient_expires_into_a_notification_in_the_senders_mailbox(tmp_path):
    with Postern(tmp_path / "p", extra_toml='[queue]\nlifetime = "2s"\nretry_min = "1s"\nretry_max = "1s"\n') as s:
        submit(s, "friend@elsewhere.test", "to a remote friend")
        s.wait_event("delivery.deferred", to="friend@elsewhere.test")
        dsn = s.wait_mail("alice@example.test", timeout=20)[0].read_bytes()
        assert b"Content-Type: multipart/report; report-type=delivery-status" in dsn
        assert b"Final-Recipient: rfc822; friend@elsewhere.test" in dsn
        assert b"Action: failed" in dsn and b"Status: 4.4.7" in dsn
        assert b"Subject: to a remote friend" in dsn   # the returned header
        assert b"Return-Path: <>" in dsn
        s.wait_event("delivery.bounced", to="friend@elsewhere.test")
        wait_until(lambda: queue_ids(s) == [], timeout=10, what="an empty queue")
        # A notification is never sent about a notification: only one message arrived.
        assert len(s.maildir("alice@example.test")) == 1


def test_operator_bounce_and_vanished_mailbox(tmp_path):
    with Postern(tmp_path / "p", extra_toml='[queue]\nretry_min = "1h"\nretry_max = "1h"\n') as s:
        submit(s, "friend@elsewhere.test", "bounce me")
        s.wait_event("delivery.deferred", to="friend@elsewhere.test")
        qid = queue_ids(s)[0]
        assert "returned to its sender" in s.cli("queue", "bounce", qid).stdout
        dsn = s.wait_mail("alice@example.test")[0].read_bytes()
        assert b"returned to the sender by the operator" in dsn
        wait_until(lambda: queue_ids(s) == [], timeout=10, what="an empty queue")


def test_account_removed_before_delivery_bounces_at_once(tmp_path):
    with Postern(tmp_path / "p", extra_toml=FAST) as s:
        hold_mailbox(s, "bob@example.test")
        send(s.ports["smtp"], "bob@example.test", mail_from="alice@example.test", subject="for bob")
        s.wait_event("delivery.deferred", to="bob@example.test")
        s.cli("account", "del", "bob@example.test")
        s.wait_event("delivery.bounced", to="bob@example.test", timeout=20)
        dsn = s.wait_mail("alice@example.test")[0].read_bytes()
        assert b"Status: 5.1.1" in dsn and b"no longer exists" in dsn


def test_symlinked_new_folder_is_never_written_through(tmp_path):
    with Postern(tmp_path / "p", extra_toml=FAST) as s:
        send(s.ports["smtp"], "bob@example.test", subject="first")
        s.wait_mail("bob@example.test")
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        new = s.mail_root / "example.test" / "bob" / "new"
        shutil.rmtree(new)
        new.symlink_to(elsewhere)
        send(s.ports["smtp"], "bob@example.test", subject="second")
        ev = s.wait_event("delivery.unsafe_path", to="bob@example.test")
        assert "symbolic link" in ev["reason"] or "not a folder" in ev["reason"]
        s.wait_event("delivery.deferred", to="bob@example.test")
        assert list(elsewhere.iterdir()) == [], "a message was written through the link"
        # The operator puts the folder back: the message arrives on the next retry.
        new.unlink()
        new.mkdir()
        wait_until(lambda: any(b"X-Test: second" in p.read_bytes() for p in s.maildir("bob@example.test")),
                   timeout=15, what="the deferred message after the folder is back")
