"""Issue 12: a DKIM signature Postern makes survives a hop through another MTA. Postern relays
(a [[route]] to a private Postfix instance on loopback), Postfix relays to the final MX
(tests/e2e/mx_server.py), and an independent verifier (python3-dkim) accepts the signature
there, for both key types."""

import os
import pwd
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import dkim
import pytest

from harness import Postern, free_port, wait_until
from mx_server import MxServer
from test_outbound import submit

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/sbin/postfix").exists(),
                                reason="a private Postfix instance needs root and the postfix package")


class PrivatePostfix:
    """Debian's postfix as `postfix -c DIR start` with its own queue and port; relays
    everything from loopback to `relay` ("[127.0.0.1]:PORT"). /etc/postfix is not changed."""

    def __init__(self, relay):
        # Not under pytest's tmp_path: Postfix's own user must reach its data folder, and
        # pytest's folders are root-only.
        self.work = Path(tempfile.mkdtemp(prefix="postern-postfix-"))
        self.work.chmod(0o755)
        self.etc, queue, data = (self.work / x for x in ("etc", "queue", "data"))
        for d in (self.etc, queue, data):
            d.mkdir(parents=True)
        pw = pwd.getpwnam("postfix")
        os.chown(data, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.log = self.work / "postfix.log"
        (self.etc / "main.cf").write_text(f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
mail_owner = postfix
setgid_group = postdrop
myhostname = hop.example.net
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost = {relay}
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
maillog_file = {self.log}
maillog_file_prefixes = /var, /dev/stdout, {self.work}
biff = no
""")
        master = []
        for line in Path("/etc/postfix/master.cf").read_text().splitlines():
            f = line.split()
            if f and not line.startswith("#") and not line[0].isspace():
                if f[0] == "smtp" and f[1] == "inet":
                    continue
                if len(f) >= 8 and f[4] == "y":
                    f[4] = "n"   # no chroot: the private queue has no chroot skeleton
                    line = "  ".join(f)
            master.append(line)
        master.append(f"127.0.0.1:{self.port} inet n - n - - smtpd")
        (self.etc / "master.cf").write_text("\n".join(master) + "\n")

    def __enter__(self):
        subprocess.run(["postfix", "-c", str(self.etc), "start"], check=True, capture_output=True, timeout=60)
        wait_until(lambda: Postern._can_connect(self.port), timeout=20, what="the private Postfix")
        return self

    def __exit__(self, *exc):
        subprocess.run(["postfix", "-c", str(self.etc), "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.work, ignore_errors=True)


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_signature_verifies_after_a_hop_through_postfix(tmp_path, key_type):
    with MxServer("127.0.0.5", 0) as mx, PrivatePostfix(f"[127.0.0.5]:{mx.port}") as hop:
        route = f'[[route]]\nrelay = "127.0.0.1:{hop.port}"\ntls = "none"\n[dkim]\nkeys = "{tmp_path}/dkim"\n'
        s = Postern(tmp_path / "p", extra_toml=route)
        out = s.cli("dkim", "keygen", "example.test", "--type", key_type).stdout
        name = re.search(r"^(\S+\._domainkey\.\S+\.) IN TXT", out, re.M).group(1)
        value = "".join(re.findall(r'"([^"]*)"', out.split(" IN TXT", 1)[1]))
        with s:
            submit(s, "bob@example.org", subject=f"signed {key_type} over two hops")
            assert s.wait_event("delivery.sent", to="bob@example.org")["relay"] == f"127.0.0.1[127.0.0.1]:{hop.port}"
            wait_until(lambda: len(mx.messages) == 1, timeout=30, what="the message through Postfix")
        data = mx.messages[0].data
        assert b"hop.example.net" in data, "the message did not pass through Postfix"

        def lookup(qname, timeout=5):
            q = qname.decode() if isinstance(qname, bytes) else qname
            return value.encode() if q == name else None
        assert dkim.verify(data, dnsfunc=lookup), data[:800]
