"""Issue 2: nothing that got 250 is lost by kill -9, nothing is delivered twice, and
SIGTERM stops gracefully."""

import signal
import smtplib
import socket
import threading
import time

from harness import Postern, wait_until


def send_many(port, start, count, acked, stop):
    for i in range(start, start + count):
        if stop.is_set():
            return
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5) as c:
                msg = f"Subject: load {i}\r\nX-Seq: {i}\r\n\r\nbody {i}\r\n".encode()
                c.sendmail("load@remote.test", ["alice@example.test"], msg)
                acked.append(i)
        except (OSError, smtplib.SMTPException):
            return


def seqs_in(server):
    out = []
    for d in ("new", "cur"):
        for p in server.maildir("alice@example.test", d):
            for line in p.read_bytes().split(b"\n"):
                if line.startswith(b"X-Seq: "):
                    out.append(int(line[7:]))
    return out


def test_kill9_under_load_loses_nothing_and_duplicates_nothing(tmp_path):
    s = Postern(tmp_path / "p").start()
    acked, stop = [], threading.Event()
    threads = [threading.Thread(target=send_many, args=(s.ports["smtp"], k * 10000, 400, acked, stop))
               for k in range(8)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: len(acked) >= 150, timeout=60, what="150 acknowledged messages")
    finally:
        s.kill9()   # mid-load, whatever happened
        stop.set()
    for t in threads:
        t.join(timeout=30)
    acknowledged = set(acked)
    s.start()
    try:
        wait_until(lambda: acknowledged <= set(seqs_in(s)), timeout=60,
                   what="every acknowledged message delivered after restart")
        time.sleep(0.5)
        seqs = seqs_in(s)
        assert len(seqs) == len(set(seqs)), "a message was delivered twice"
        assert acknowledged <= set(seqs)
    finally:
        assert s.stop() == 0


def test_sigterm_lets_a_transaction_finish(tmp_path):
    with Postern(tmp_path / "p") as s:
        c = smtplib.SMTP("127.0.0.1", s.ports["smtp"], timeout=10)
        c.ehlo("x")
        c.mail("a@remote.test")
        c.rcpt("alice@example.test")
        idle = socket.create_connection(("127.0.0.1", s.ports["smtp"]), timeout=10)
        assert idle.recv(100).startswith(b"220")
        s.proc.send_signal(signal.SIGTERM)
        # The idle session is told the server is going away.
        assert idle.recv(200).startswith(b"421 4.3.2")
        code, _ = c.data(b"Subject: last\r\n\r\nfinishing\r\n")
        assert code == 250
        s.wait_mail("alice@example.test")
        c.close()
        assert s.proc.wait(timeout=15) == 0
