"""RFC 3461 delivery status notification requests: EHLO advertises DSN; RET, ENVID, NOTIFY
and ORCPT are checked (501 5.5.4) and honoured by the queue's notifications (RFC 3464):
no bounce for NOTIFY=NEVER, Original-Envelope-Id and Original-Recipient reported, the
header only for RET=HDRS, a "delivered" notice for NOTIFY=SUCCESS, and one delay warning
after [queue] delay_warning, never two (also across a restart)."""

import smtplib
import time

from harness import Postern, wait_until
from test_queue import hold_mailbox

FAST = '[queue]\nretry_min = "1s"\nretry_max = "1s"\n'


def send(port, to, mail_from="alice@example.test", subject="dsn", mail_options=(), rcpt_options=()):
    body = f"Subject: {subject}\r\nX-Test: {subject}\r\n\r\nbody of {subject}\r\n".encode()
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as c:
        c.sendmail(mail_from, [to], body, mail_options=list(mail_options), rcpt_options=list(rcpt_options))


def fail_for_good(server, address):
    """Held, then the account removed: the next attempt fails permanently (5.1.1)."""
    server.wait_event("delivery.deferred", to=address)
    server.cli("account", "del", address)
    server.wait_event("delivery.bounced", to=address, timeout=20)


def mails(server, address):
    return [p.read_bytes() for p in server.maildir(address)]


def first_mail(server, address, timeout=20):
    """The first message in the Maildir (stored with LF line ends)."""
    return server.wait_mail(address, timeout=timeout)[0].read_bytes()


def test_ehlo_advertises_dsn_and_bad_parameters_get_501(tmp_path):
    with Postern(tmp_path / "p", extra_toml="[smtp]\nmax_errors = 50\n") as s:
        with smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10) as c:
            c.ehlo("client.example")
            assert c.has_extn("dsn"), c.esmtp_features
            for line, why in [("MAIL FROM:<alice@example.test> RET=BODY", b"RET"),
                              ("MAIL FROM:<alice@example.test> ENVID=a+0D+0Ab", b"ENVID"),
                              ("MAIL FROM:<alice@example.test> ENVID=" + "x" * 101, b"longer than 100"),
                              ("MAIL FROM:<alice@example.test> RET=FULL RET=HDRS", b"Duplicate")]:
                code, text = c.docmd(line)
                assert code == 501 and text.startswith(b"5.5.4") and why in text, (line, code, text)
            code, _ = c.docmd("MAIL FROM:<alice@example.test> RET=HDRS ENVID=QQ+2B1")
            assert code == 250
            for line, why in [("RCPT TO:<bob@example.test> NOTIFY=NEVER,SUCCESS", b"NEVER"),
                              ("RCPT TO:<bob@example.test> NOTIFY=SOMETIMES", b"NOTIFY"),
                              ("RCPT TO:<bob@example.test> NOTIFY=DELAY,DELAY", b"twice"),
                              ("RCPT TO:<bob@example.test> ORCPT=bob@example.test", b"ORCPT"),
                              ("RCPT TO:<bob@example.test> ORCPT=rfc822;a+0Ab", b"ORCPT"),
                              ("RCPT TO:<bob@example.test> NOTIFY=NEVER NOTIFY=NEVER", b"Duplicate")]:
                code, text = c.docmd(line)
                assert code == 501 and text.startswith(b"5.5.4") and why in text, (line, code, text)
            code, _ = c.docmd("RCPT TO:<bob@example.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;bob+40example.test")
            assert code == 250


def test_notify_never_means_no_bounce(tmp_path):
    with Postern(tmp_path / "p", extra_toml=FAST) as s:
        hold_mailbox(s, "bob@example.test")
        send(s.ports["smtp"], "bob@example.test", subject="never", rcpt_options=["NOTIFY=NEVER"])
        fail_for_good(s, "bob@example.test")
        s.wait_event("queue.no_notification", to="bob@example.test", reason="NOTIFY=NEVER")
        time.sleep(1)
        assert mails(s, "alice@example.test") == []


def test_bounce_carries_envid_and_orcpt_and_ret_hdrs_returns_the_header(tmp_path):
    with Postern(tmp_path / "p", extra_toml=FAST) as s:
        hold_mailbox(s, "bob@example.test")
        send(s.ports["smtp"], "bob@example.test", subject="hdrs only", mail_options=["RET=HDRS", "ENVID=QQ+2B314159"],
             rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Bob+40Example.test"])
        fail_for_good(s, "bob@example.test")
        dsn = first_mail(s, "alice@example.test")
        assert b"Subject: Undelivered Mail Returned to Sender" in dsn
        assert b"Original-Envelope-Id: QQ+314159\n" in dsn
        assert b"Original-Recipient: rfc822;Bob@Example.test\nFinal-Recipient: rfc822; bob@example.test\n" in dsn
        assert b"Action: failed\nStatus: 5.1.1\n" in dsn
        assert b"Content-Type: text/rfc822-headers" in dsn and b"X-Test: hdrs only" in dsn
        assert b"body of hdrs only" not in dsn, "RET=HDRS: only the header is returned"


def test_without_ret_the_whole_message_is_returned(tmp_path):
    with Postern(tmp_path / "p", extra_toml=FAST) as s:
        hold_mailbox(s, "bob@example.test")
        send(s.ports["smtp"], "bob@example.test", subject="whole")
        fail_for_good(s, "bob@example.test")
        dsn = first_mail(s, "alice@example.test")
        assert b"Content-Type: message/rfc822" in dsn and b"body of whole" in dsn
        assert b"Original-Envelope-Id" not in dsn and b"Original-Recipient" not in dsn


def test_notify_success_gets_a_delivered_notification(tmp_path):
    with Postern(tmp_path / "p", extra_toml=FAST) as s:
        send(s.ports["smtp"], "bob@example.test", subject="tell me", rcpt_options=["NOTIFY=SUCCESS"])
        s.wait_mail("bob@example.test")
        dsn = first_mail(s, "alice@example.test")
        assert b"Subject: Successful Mail Delivery Report" in dsn
        assert b"Final-Recipient: rfc822; bob@example.test\nAction: delivered\nStatus: 2.0.0\n" in dsn
        assert b"X-Test: tell me" in dsn and b"body of tell me" not in dsn
        # Without NOTIFY=SUCCESS, a delivery is not reported.
        send(s.ports["smtp"], "bob@example.test", subject="quiet")
        s.wait_mail("bob@example.test", count=2)
        time.sleep(1)
        assert len(mails(s, "alice@example.test")) == 1


def test_delay_warning_is_sent_once_even_across_a_restart(tmp_path):
    s = Postern(tmp_path / "p", extra_toml=FAST + 'delay_warning = "2s"\nlifetime = "1h"\n')
    s.start()
    try:
        hold_mailbox(s, "bob@example.test")
        send(s.ports["smtp"], "bob@example.test", subject="slow", mail_options=["ENVID=slow1"])
        # NOTIFY without DELAY: no warning for this one.
        send(s.ports["smtp"], "bob@example.test", subject="no warning", rcpt_options=["NOTIFY=FAILURE"])
        dsn = first_mail(s, "alice@example.test")
        assert b"Subject: Delayed Mail (still being retried)" in dsn
        assert b"Action: delayed\nStatus: 4." in dsn
        assert b"Will-Retry-Until: " in dsn and b"Original-Envelope-Id: slow1" in dsn
        assert b"X-Test: slow" in dsn and b"body of slow" not in dsn
        listed = s.cli("queue", "list").stdout
        assert listed.count(" warned") == 1, listed   # the slow message's recipient, not the other
        n = len(s.log_events("delivery.deferred"))
        wait_until(lambda: len(s.log_events("delivery.deferred")) >= n + 4, timeout=20, what="more deferrals")
        assert s.stop() == 0
        s.start()
        n = len(s.log_events("delivery.deferred"))
        wait_until(lambda: len(s.log_events("delivery.deferred")) >= n + 4, timeout=20, what="deferrals after restart")
        assert len(mails(s, "alice@example.test")) == 1, "one warning, not two"
    finally:
        s.stop()
