"""Test harness: runs the real `postern` binary on free loopback ports with a private
configuration, certificate, accounts and aliases, and gives tests ways to look at its
logs and Maildirs. No mocks: the binary under test is the one `make` built."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BIN = os.environ.get("POSTERN_BIN") or str(Path(__file__).resolve().parents[2] / "build" / "postern")
DOMAIN = "example.test"
HOSTNAME = "mail.example.test"
# Tests hammer the server from 127.0.0.1; protection tests use other loopback sources
# (127.0.0.2, 127.0.0.3) or pass their own protect_toml.
DEFAULT_PROTECT = '[protect]\nallow_networks = ["127.0.0.1/32"]'
PASSWORDS = {"alice@example.test": "alice-secret-1", "bob@example.test": "bob-secret-2"}


def stop_process(proc, sig=signal.SIGTERM, timeout=20):
    """Signals `proc` and waits; kills it if it outlives `timeout`. Returns (exit code,
    whether it had to be killed)."""
    killed = False
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            killed = True
    return proc.returncode, killed


def free_port(host="127.0.0.1"):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def replies_until_close(sock, timeout=10):
    """Every reply line the server sends until it closes the connection (or `timeout`)."""
    sock.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return [l for l in data.split(b"\r\n") if l]


def make_cert(directory, cn=HOSTNAME, names=(HOSTNAME, "localhost"), days=365, key="ec", serial=None):
    """A self-signed certificate made with the openssl command line; returns (cert, key)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cert, keyf = directory / f"{cn}.crt", directory / f"{cn}.key"
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else ["-newkey", "rsa:2048"]
    san = ",".join(f"DNS:{n}" for n in names)
    cmd = ["openssl", "req", "-x509", *newkey, "-nodes", "-days", str(days), "-subj", f"/CN={cn}",
           "-addext", f"subjectAltName={san}", "-keyout", str(keyf), "-out", str(cert)]
    if serial is not None:
        cmd += ["-set_serial", str(serial)]
    subprocess.run(cmd, check=True, capture_output=True)
    return cert, keyf


class Postern:
    """One running server. Use as a context manager or call start()/stop()."""

    def __init__(self, workdir, listeners=None, extra_toml="", accounts=None, aliases=None, tls=True,
                 proxy_toml="", threads=2, protect_toml=DEFAULT_PROTECT, data_dir="data", user="root",
                 server_toml="", env=None, directory_toml=""):
        """`data_dir` (spool/ and state/) is relative to `workdir` unless absolute, e.g. on a
        file system the test mounted; the mailbox root stays `workdir`/mail. `user` is
        [server] user: tests run as root in private folders (pytest's tmp_path is root-only),
        so they keep root explicitly; test_privileges.py covers the drop (None: no setting).
        `env`: variables added to the server's environment (e.g. NOTIFY_SOCKET).
        `directory_toml`: more [directory] keys, e.g. 'quotas = "quotas.cf"'."""
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ports = {}
        self.listeners = listeners or [("smtp", "off"), ("submission", "off"), ("submissions", "off")]
        self.extra_toml = extra_toml
        self.proxy_toml = proxy_toml
        self.protect_toml = protect_toml
        self.tls = tls
        self.threads = threads
        self.user = user
        self.server_toml = server_toml   # more [server] keys, e.g. "max_connections = 50"
        self.directory_toml = directory_toml
        self.proc = None
        self.env = dict(env or {})
        self._data_dir_setting = str(data_dir)
        self.data_dir = self.dir / data_dir
        self.log_path = self.dir / "postern.log"
        self.config_path = self.dir / "postern.toml"
        self.accounts_path = self.dir / "accounts.cf"
        self.aliases_path = self.dir / "virtual.cf"
        self.mail_root = self.dir / "mail"
        if tls:
            self.cert, self.key = make_cert(self.dir / "tls")
        self._write_config()
        self.accounts_path.write_text("")
        for addr, pw in (accounts if accounts is not None else PASSWORDS).items():
            self.cli("account", "add", addr, "--password-stdin", input=pw + "\n")
        self.aliases_path.write_text(aliases if aliases is not None else
                                     "postmaster@example.test alice@example.test\n"
                                     "team@example.test alice@example.test,bob@example.test\n"
                                     "@catchall.test bob@example.test\n")

    def _write_config(self):
        lines = [f'hostname = "{HOSTNAME}"', f'data_dir = "{self._data_dir_setting}"', "", "[server]",
                 f"threads = {self.threads}", f'user = "{self.user}"' if self.user else "", self.server_toml,
                 'shutdown_timeout = "10s"', "", "[directory]", 'accounts = "accounts.cf"', 'aliases = "virtual.cf"',
                 self.directory_toml, "", "[mailbox]", 'root = "mail"', ""]
        if self.tls:
            lines += ["[tls]", f'cert = "{self.cert}"', f'key = "{self.key}"', ""]
        if self.proxy_toml:
            lines += [self.proxy_toml, ""]
        if self.protect_toml:
            lines += [self.protect_toml, ""]
        lines += [self.extra_toml, ""]
        if "[dns]" not in self.extra_toml:
            # Hermetic: remote domains are looked up at a closed loopback port (an instant
            # "connection refused", so remote mail defers at once), never on the network.
            lines += ["[dns]", 'servers = ["127.0.0.1:9"]', 'timeout = "1s"', ""]
        for entry in self.listeners:
            service, mode = entry[0], entry[1]
            extra = entry[2] if len(entry) > 2 else ""
            port = self.ports.get(service) or free_port()
            self.ports[service] = port
            lines += ["[[listener]]", f'service = "{service}"', f'address = "127.0.0.1:{port}"',
                      f'proxy_protocol = "{mode}"', extra, ""]
        self.config_path.write_text("\n".join(lines))

    def cli(self, *args, input=None, check=True):
        r = subprocess.run([BIN, *args, "--config", str(self.config_path)], input=input, capture_output=True,
                           text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError(f"postern {' '.join(args)} failed ({r.returncode}): {r.stderr}")
        return r

    def start(self, wait=True):
        """Starts the server; with `wait`, returns once it has said server.started."""
        start_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._log = open(self.log_path, "ab")
        # Never the NOTIFY_SOCKET of whatever runs the tests (a CI job under systemd): a test
        # server must not report itself to that service manager.
        env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
        self.proc = subprocess.Popen([BIN, "serve", "--config", str(self.config_path)], stdout=self._log,
                                     stderr=self._log, env={**env, **self.env})
        if not wait:
            return self
        for service, port in self.ports.items():
            wait_until(lambda: self._can_connect(port) or self._died(), timeout=15, what=f"{service} listening")
            if self._died():
                raise AssertionError(f"postern exited early ({self.proc.returncode}):\n{self.log()}")
        # Ports answer as soon as they are bound, before the spool is recovered and the
        # control socket made: ready means the server said so.
        wait_until(lambda: "server.started" in self.log()[start_offset:] or self._died(), timeout=30,
                   what="server.started")   # this run's: the log is appended to across restarts
        if self._died():
            raise AssertionError(f"postern exited early ({self.proc.returncode}):\n{self.log()}")
        return self

    def _died(self):
        return self.proc.poll() is not None

    @staticmethod
    def _can_connect(port):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        code, killed = stop_process(self.proc, sig, timeout)
        self.proc = None
        self._log.close()
        if killed:
            raise AssertionError("postern did not stop within %ss after %s" % (timeout, sig))
        return code

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.proc = None
        self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        code = self.stop()
        if exc[0] is None:
            assert code == 0, f"postern exited with {code}:\n{self.log()[-4000:]}"

    # Observations -------------------------------------------------------------------------

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self, event):
        """Parsed key=value fields of every text log line with event=EVENT."""
        out = []
        for line in self.log().splitlines():
            if f" event={event} " not in line + " ":
                continue
            fields = {}
            for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', line):
                v = m.group(2)
                fields[m.group(1)] = v[1:-1].replace('\\"', '"') if v.startswith('"') else v
            out.append(fields)
        return out

    def wait_event(self, event, timeout=10, **match):
        def find():
            for f in self.log_events(event):
                if all(f.get(k) == v for k, v in match.items()):
                    return f
            return None
        return wait_until(find, timeout=timeout, what=f"log event {event} {match}")

    def maildir(self, address, sub="new"):
        local, domain = address.split("@")
        d = self.mail_root / domain / local / sub
        return sorted(d.iterdir()) if d.exists() else []

    def wait_mail(self, address, count=1, timeout=10):
        return wait_until(lambda: (m := self.maildir(address)) and len(m) >= count and m, timeout=timeout,
                          what=f"{count} message(s) in {address}")

    def rss_kib(self):
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0
