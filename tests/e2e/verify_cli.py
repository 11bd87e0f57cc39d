"""Runs `postern verify` (the inbound SPF/DKIM/ARC/DMARC checks on one message) against a
loopback DNS server, for the cross-check tests. The configuration it writes is a complete,
valid one (an empty accounts file and a listener that is never started), since `postern
verify` reads the same file the server would."""

import json
import subprocess
import tempfile
from pathlib import Path

from harness import BIN


def verify(dns_address, message, ip, helo=None, mail_from=None, verify_toml="", timeout=30):
    """The --json result of `postern verify` as a dict. `dns_address` is (host, port);
    `message` bytes or str (LF or CRLF line ends); `verify_toml` is extra [verify] lines."""
    if isinstance(message, str):
        message = message.encode()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / "accounts.cf").write_text("")
        (d / "postern.toml").write_text(
            'hostname = "mx.verify.test"\ndata_dir = "var"\n'
            '[directory]\naccounts = "accounts.cf"\n'
            '[[listener]]\nservice = "smtp"\naddress = "127.0.0.1:9"\n'
            f'[dns]\nservers = ["{dns_address[0]}:{dns_address[1]}"]\ntimeout = "2s"\n'
            f'[verify]\n{verify_toml}\n')
        args = [BIN, "verify", "--config", str(d / "postern.toml"), "--ip", ip, "--json"]
        if helo:
            args += ["--helo", helo]
        if mail_from is not None:
            args += ["--mail-from", mail_from]
        p = subprocess.run(args, input=message, capture_output=True, timeout=timeout)
        assert p.returncode == 0, p.stderr.decode()
        return json.loads(p.stdout)
