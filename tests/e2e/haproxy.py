"""A real HAProxy in front of Postern for end-to-end tests: writes a TCP-mode haproxy.cfg on
free loopback ports and runs `haproxy -f cfg -db` as a child process.

Readiness is taken from the kernel (every frontend port is in LISTEN state) and from the
stats socket answering, never from a probe connection: a probe through a frontend would be
forwarded to Postern and show up in the very logs the tests look at."""

import os
import signal
import socket
import subprocess
from pathlib import Path

from harness import free_port, stop_process, wait_until

HAPROXY = os.environ.get("HAPROXY_BIN", "/usr/sbin/haproxy")

# HAProxy's own address towards Postern (the `via=` in Postern's logs).
BACKEND_SOURCE = "127.0.0.1"


class Route:
    """One frontend -> one Postern port. `send_proxy` is "", "send-proxy" or "send-proxy-v2";
    `server_options` is appended to the server line as is (e.g. "check check-send-proxy inter 200ms"),
    `backend_options` is one more line in the backend section (e.g. "option smtpchk")."""

    def __init__(self, name, backend_port, send_proxy="send-proxy-v2", server_options="", backend_options=""):
        self.name = name
        self.backend_port = backend_port
        self.send_proxy = send_proxy
        self.server_options = server_options
        self.backend_options = backend_options


def _listening_ports():
    """Local TCP ports in LISTEN state (IPv4), from /proc/net/tcp."""
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A":
            ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


class HAProxy:
    """A running HAProxy. `.ports[name]` is the frontend port of route `name`."""

    def __init__(self, workdir, routes):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.routes = list(routes)
        self.ports = {r.name: free_port() for r in self.routes}
        self.config_path = self.dir / "haproxy.cfg"
        self.stats_path = self.dir / "haproxy.sock"
        self.log_path = self.dir / "haproxy.log"
        self.proc = None
        self.config_path.write_text(self.config())

    def config(self):
        lines = ["global",
                 "    maxconn 256",
                 f"    stats socket {self.stats_path} mode 600 level admin",
                 "",
                 "defaults",
                 "    mode tcp",
                 "    timeout connect 2s",
                 "    timeout client 30s",
                 "    timeout server 30s",
                 "    timeout check 2s",
                 ""]
        for r in self.routes:
            server = f"    server postern 127.0.0.1:{r.backend_port} source {BACKEND_SOURCE}"
            if r.send_proxy:
                server += f" {r.send_proxy}"
            if r.server_options:
                server += f" {r.server_options}"
            lines += [f"frontend fe_{r.name}",
                      f"    bind 127.0.0.1:{self.ports[r.name]}",
                      f"    default_backend be_{r.name}",
                      "",
                      f"backend be_{r.name}"]
            if r.backend_options:
                lines.append(f"    {r.backend_options}")
            lines += [server, ""]
        return "\n".join(lines)

    def start(self):
        check = subprocess.run([HAPROXY, "-c", "-f", str(self.config_path)], capture_output=True, text=True)
        if check.returncode != 0:
            raise AssertionError(f"haproxy rejected its config:\n{check.stdout}{check.stderr}\n{self.config()}")
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HAPROXY, "-f", str(self.config_path), "-db"], stdout=self._log,
                                     stderr=self._log)
        wanted = set(self.ports.values())

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"haproxy exited early ({self.proc.returncode}):\n{self.log()}")
            return wanted <= _listening_ports() and self._stats_answer("show info\n")

        try:
            wait_until(ready, timeout=10, what="haproxy frontends listening")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout=10):
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGTERM, timeout)
        self.proc = None
        self._log.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # Observations -------------------------------------------------------------------------

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _stats_answer(self, command):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(2)
                s.connect(str(self.stats_path))
                s.sendall(command.encode())
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
                return b"".join(chunks).decode(errors="replace")
        except OSError:
            return None

    def servers(self):
        """{route name: fields of `show stat` for its Postern server} (status, check_status, ...)."""
        text = self._stats_answer("show stat\n") or ""
        rows = [line for line in text.splitlines() if line]
        if not rows or not rows[0].startswith("# "):
            return {}
        names = rows[0][2:].split(",")
        out = {}
        for row in rows[1:]:
            f = dict(zip(names, row.split(",")))
            if f.get("svname") == "postern" and f.get("pxname", "").startswith("be_"):
                out[f["pxname"][3:]] = f
        return out
