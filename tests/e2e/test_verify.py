"""Inbound sender authentication in the SMTP session ([verify]): SPF on the real client
address after PROXY (direct headers and through a real HAProxy), refusing at RCPT by
spf_reject, the Authentication-Results field on top of the stored message (and forged ones
claiming our id removed), Junk filing by a header, and a message spilled to the spool
rewritten whole. The verifiers themselves are cross-checked against independent
implementations in test_*_crosscheck.py."""

import smtplib
import socket
import subprocess

import pytest

from dns_server import DnsServer
from harness import HOSTNAME, Postern, wait_until
from haproxy import HAProxy, Route

RECORDS = {
    "sender.test": [("TXT", "v=spf1 ip4:192.0.2.10 ip4:127.0.0.2 ip6:2001:db8::10 -all")],
    "soft.test": [("TXT", "v=spf1 ip4:192.0.2.10 ~all")],
    "broken.test": [("TXT", "v=spf1 ip4:192.0.2.10 foo:bar -all")],
    "strict.test": [("TXT", "v=spf1 ip4:192.0.2.10 -all")],
    "_dmarc.strict.test": [("TXT", "v=DMARC1; p=reject")],
    "quar.test": [("TXT", "v=spf1 ip4:192.0.2.10 -all")],
    "_dmarc.quar.test": [("TXT", "v=DMARC1; p=quarantine")],
    "sampled.test": [("TXT", "v=spf1 ip4:192.0.2.10 -all")],
    "_dmarc.sampled.test": [("TXT", "v=DMARC1; p=quarantine; pct=0")],
}


class ProxiedSMTP(smtplib.SMTP):
    """smtplib over a connection that first sends a PROXY v1 header for `client`."""

    def __init__(self, port, client, **kw):
        self._proxy_client = client
        super().__init__("127.0.0.1", port, **kw)

    def _get_socket(self, host, port, timeout):
        s = socket.create_connection((host, port), timeout)
        family = "TCP6" if ":" in self._proxy_client else "TCP4"
        dst = "2001:db8::1" if family == "TCP6" else "127.0.0.1"
        s.sendall(f"PROXY {family} {self._proxy_client} {dst} 40000 25\r\n".encode())
        return s


def message(subject, extra=""):
    return (f"From: Someone <someone@sender.test>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n"
            f"{extra}\r\nHello.\r\n").encode()


def header_block(data):
    return data.split(b"\n\n", 1)[0].decode()


def auth_results(data):
    """Our Authentication-Results field (unfolded) from a stored message."""
    lines = header_block(data).split("\n")
    out = []
    for i, line in enumerate(lines):
        if line.startswith(f"Authentication-Results: {HOSTNAME}"):
            out.append(line)
            for cont in lines[i + 1:]:
                if cont[:1] not in (" ", "\t"):
                    break
                out.append(cont.strip())
            return " ".join(out)
    return None


@pytest.fixture(scope="module")
def dns():
    with DnsServer(RECORDS) as d:
        yield d


def make_server(tmp_path, dns, verify_toml="", listeners=None, protect_toml=None):
    kw = {}
    if protect_toml is not None:
        kw["protect_toml"] = protect_toml
    return Postern(tmp_path / "srv", listeners=listeners or [("smtp", "required")],
                  extra_toml=f'[dns]\nservers = ["{dns.address}"]\ntimeout = "2s"\n\n[verify]\n{verify_toml}\n', **kw)


def test_spf_uses_the_real_client_address_from_the_proxy_header(tmp_path, dns):
    with make_server(tmp_path, dns) as s:
        for client, subject, want in (("192.0.2.10", "pass", "spf=pass"), ("198.51.100.7", "fail", "spf=fail"),
                                      ("2001:db8::10", "pass6", "spf=pass")):
            with ProxiedSMTP(s.ports["smtp"], client, timeout=10) as c:
                c.ehlo("client.sender.test")
                c.sendmail("someone@sender.test", ["alice@example.test"], message(subject))
        files = s.wait_mail("alice@example.test", count=3)
        results = {}
        for f in files:
            data = f.read_bytes()
            subj = [l for l in header_block(data).split("\n") if l.startswith("Subject: ")][0][9:]
            results[subj] = auth_results(data)
        assert "spf=pass" in results["pass"] and "smtp.mailfrom=someone@sender.test" in results["pass"], results
        assert "spf=fail" in results["fail"], results
        assert "spf=pass" in results["pass6"], results
        # The log line of each acceptance carries the results.
        events = s.log_events("smtp.accepted")
        by_client = {e["client"].rsplit(":", 1)[0].strip("[]"): e for e in events}
        assert by_client["198.51.100.7"]["verify"].startswith("spf=fail"), by_client
        assert by_client["192.0.2.10"]["verify"].startswith("spf=pass"), by_client


def test_spf_reject_refuses_at_rcpt_with_rfc7372_codes(tmp_path, dns):
    with make_server(tmp_path, dns, 'spf_reject = ["fail", "permerror"]') as s:
        with ProxiedSMTP(s.ports["smtp"], "198.51.100.7", timeout=10) as c:
            c.ehlo("client.sender.test")
            assert c.mail("someone@sender.test")[0] == 250
            code, text = c.rcpt("alice@example.test")
            assert code == 550 and text.startswith(b"5.7.23"), (code, text)
        with ProxiedSMTP(s.ports["smtp"], "198.51.100.7", timeout=10) as c:
            c.ehlo("client.broken.test")
            c.mail("someone@broken.test")
            code, text = c.rcpt("alice@example.test")
            assert code == 550 and text.startswith(b"5.7.24"), (code, text)
        # softfail is not in the list: accepted, and recorded.
        with ProxiedSMTP(s.ports["smtp"], "198.51.100.7", timeout=10) as c:
            c.ehlo("client.soft.test")
            c.sendmail("someone@soft.test", ["alice@example.test"], message("soft"))
        data = s.wait_mail("alice@example.test")[0].read_bytes()
        assert "spf=softfail" in auth_results(data)
        ev = s.wait_event("verify.spf_rejected")
        assert ev["spf"] == "fail" and ev["domain"] == "sender.test"


def test_forged_results_with_our_id_are_removed_others_kept(tmp_path, dns):
    forged = (f"Authentication-Results: {HOSTNAME.upper()}; spf=pass smtp.mailfrom=someone@sender.test;\r\n"
              f"\tdkim=pass header.d=sender.test\r\n"
              "Authentication-Results: other.example; spf=fail\r\n")
    with make_server(tmp_path, dns) as s:
        with ProxiedSMTP(s.ports["smtp"], "198.51.100.7", timeout=10) as c:
            c.ehlo("client.sender.test")
            c.sendmail("someone@sender.test", ["alice@example.test"], message("forged", forged))
        data = s.wait_mail("alice@example.test")[0].read_bytes()
        head = header_block(data)
        ours = [l for l in head.split("\n") if l.lower().startswith(f"authentication-results: {HOSTNAME}")]
        assert len(ours) == 1, head          # only the one we added
        assert "spf=fail" in auth_results(data)
        assert "Authentication-Results: other.example; spf=fail" in head
        assert "dkim=pass header.d=sender.test" not in head


def test_junk_header_files_into_the_junk_folder(tmp_path, dns):
    with make_server(tmp_path, dns, 'junk_header = "X-Spam: Yes"') as s:
        with ProxiedSMTP(s.ports["smtp"], "192.0.2.10", timeout=10) as c:
            c.ehlo("client.sender.test")
            c.sendmail("someone@sender.test", ["alice@example.test"], message("spam", "X-Spam: yes\r\n"))
            c.sendmail("someone@sender.test", ["alice@example.test"], message("ham", "X-Spam: No\r\n"))
        junk = s.mail_root / "example.test" / "alice" / ".Junk"
        wait_until(lambda: list((junk / "new").glob("*")), what="a message in Junk")
        assert (junk / "maildirfolder").exists()
        files = list((junk / "new").iterdir())
        assert len(files) == 1 and b"Subject: spam" in files[0].read_bytes()
        inbox = s.wait_mail("alice@example.test")
        assert len(inbox) == 1 and b"Subject: ham" in inbox[0].read_bytes()
        ev = s.wait_event("delivery.delivered", folder="Junk")
        assert ev["to"] == "alice@example.test"


def test_a_spilled_message_is_verified_and_stored_whole(tmp_path, dns):
    big = b"".join(b"line %07d of a message larger than the spool chunk ..........\r\n" % i for i in range(40000))
    with make_server(tmp_path, dns) as s:
        with ProxiedSMTP(s.ports["smtp"], "192.0.2.10", timeout=30) as c:
            c.ehlo("client.sender.test")
            c.sendmail("someone@sender.test", ["alice@example.test"], message("big") + big)
        data = s.wait_mail("alice@example.test", timeout=30)[0].read_bytes()
        assert "spf=pass" in auth_results(data)
        assert data.endswith(big.replace(b"\r\n", b"\n"))
        assert data.count(b"Received: from client.sender.test") == 1
        ev = s.wait_event("smtp.accepted")
        assert int(ev["size"]) > len(big)


def test_authenticated_submissions_are_not_verified(tmp_path, dns):
    with make_server(tmp_path, dns, listeners=[("submission", "off")]) as s:
        with smtplib.SMTP("127.0.0.1", s.ports["submission"], timeout=10) as c:
            c.starttls()
            c.login("bob@example.test", "bob-secret-2")
            c.sendmail("bob@example.test", ["alice@example.test"], message("internal"))
        data = s.wait_mail("alice@example.test")[0].read_bytes()
        assert auth_results(data) is None
        assert dns.count("example.test", "TXT") == 0


def test_spf_behind_haproxy_passes_for_the_real_client_not_the_proxy(tmp_path, dns):
    # 127.0.0.2 is allowed by sender.test's record; HAProxy's own address (127.0.0.1) is not.
    with make_server(tmp_path, dns, listeners=[("smtp", "required")],
                     protect_toml='[protect]\nallow_networks = ["127.0.0.9/32"]') as s:
        with HAProxy(tmp_path / "haproxy", [Route("smtp", s.ports["smtp"], "send-proxy-v2")]) as h:
            port = h.ports["smtp"]
            for source, subject in (("127.0.0.2", "real"), ("127.0.0.3", "other")):
                sock = socket.create_connection(("127.0.0.1", port), 10, source_address=(source, 0))
                with smtplib.SMTP() as c:
                    c.sock = sock
                    c.file = None
                    code, _ = c.getreply()
                    assert code == 220
                    c.ehlo("client.sender.test")
                    c.sendmail("someone@sender.test", ["alice@example.test"], message(subject))
            files = s.wait_mail("alice@example.test", count=2)
        got = {}
        for f in files:
            data = f.read_bytes()
            subj = [l for l in header_block(data).split("\n") if l.startswith("Subject: ")][0][9:]
            got[subj] = auth_results(data)
        assert "spf=pass" in got["real"], got
        assert "spf=fail" in got["other"], got
        ev = [e for e in s.log_events("smtp.accepted") if e["client"].startswith("127.0.0.2:")]
        assert ev and ev[0]["via"].startswith("127.0.0.1:") and ev[0]["verify"].startswith("spf=pass")


def dmarc_message(domain, subject):
    return (f"From: <news@{domain}>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\nHello.\r\n").encode()


def test_dmarc_enforce_rejects_and_quarantines_recording_only_by_default(tmp_path, dns):
    # SPF fails for 198.51.100.7 and there is no DKIM signature: DMARC fails for each domain.
    with make_server(tmp_path / "enforce", dns, "dmarc_enforce = true") as s:
        with ProxiedSMTP(s.ports["smtp"], "198.51.100.7", timeout=10) as c:
            c.ehlo("client.example.net")
            c.mail(f"news@strict.test")
            assert c.rcpt("alice@example.test")[0] == 250   # DMARC needs the message: refused at its end
            code, text = c.data(dmarc_message("strict.test", "rejected"))
            assert code == 550 and text.startswith(b"5.7.1") and b"strict.test" in text, (code, text)
            c.rset()
            c.sendmail("news@quar.test", ["alice@example.test"], dmarc_message("quar.test", "quarantined"))
            c.sendmail("news@sampled.test", ["alice@example.test"], dmarc_message("sampled.test", "sampled"))
        junk = s.mail_root / "example.test" / "alice" / ".Junk" / "new"
        wait_until(lambda: list(junk.glob("*")), what="the quarantined message in Junk")
        files = list(junk.iterdir())
        assert len(files) == 1 and b"Subject: quarantined" in files[0].read_bytes()
        assert "dmarc=fail" in auth_results(files[0].read_bytes())
        inbox = s.wait_mail("alice@example.test")
        assert len(inbox) == 1 and b"Subject: sampled" in inbox[0].read_bytes()   # pct=0: quarantine not applied (RFC 7489 §6.6.4)
        assert "dis=none" in auth_results(inbox[0].read_bytes())
        ev = s.wait_event("verify.dmarc_rejected")
        assert ev["header_from"] == "strict.test"
    # Without dmarc_enforce the same message is only recorded.
    with make_server(tmp_path / "record", dns) as s:
        with ProxiedSMTP(s.ports["smtp"], "198.51.100.7", timeout=10) as c:
            c.ehlo("client.example.net")
            c.sendmail("news@strict.test", ["alice@example.test"], dmarc_message("strict.test", "recorded"))
        data = s.wait_mail("alice@example.test")[0].read_bytes()
        assert "dmarc=fail (p=reject dis=reject)" in auth_results(data)


def test_helo_identity_is_checked_as_well(tmp_path, dns):
    with make_server(tmp_path, dns) as s:
        with ProxiedSMTP(s.ports["smtp"], "192.0.2.10", timeout=10) as c:
            c.ehlo("sender.test")
            c.sendmail("someone@soft.test", ["alice@example.test"], message("helo"))
        ar = auth_results(s.wait_mail("alice@example.test")[0].read_bytes())
        assert "spf=pass smtp.mailfrom=someone@soft.test" in ar, ar
        assert "spf=pass smtp.helo=sender.test" in ar, ar
