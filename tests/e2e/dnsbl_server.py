"""A tiny authoritative DNS responder for DNSBL tests (RFC 5782 lists, RFC 1035 messages),
on 127.0.0.1 and a free UDP port, built on Debian's python3-dnslib.

    with DnsblServer({"2.0.0.127.zen.example": ["127.0.0.2"]}) as dns:
        toml = f'resolver = "{dns.address}"'
        dns.answers["3.0.0.127.zen.example"] = ["127.0.0.4"]   # changes apply to the next query
        dns.ignore.add("*")                                    # from now on: never answer (timeouts)

Names are compared lower-case without the trailing dot. Each name decides by the first rule
that matches: `ignore` (no reply at all), `servfail` (SERVFAIL), `answers` (NOERROR with those
A records; an empty list is NODATA), else NXDOMAIN. In `ignore` and `servfail`, "*" matches
every name and "*.zone" every name under zone. Every query is recorded in `queries`.

Run as a script for manual tests:
    /usr/bin/python3 dnsbl_server.py --port 5353 --answer 2.0.0.127.zen.example=127.0.0.2
"""

import argparse
import select
import socket
import threading

from dnslib import QTYPE, RCODE, RR, A, DNSRecord

TTL = 60          # seconds, on every answer
MAX_QUERY = 4096  # bytes read per datagram


def _matches(name, patterns):
    for p in patterns:
        if p == "*" or p == name or (p.startswith("*.") and name.endswith(p[1:])):
            return True
    return False


class DnsblServer:
    """Runs in a daemon thread from start() (or `with`) to stop(). Thread-safe to reconfigure."""

    def __init__(self, answers=None, ignore=(), servfail=(), host="127.0.0.1", port=0):
        self.answers = {self._norm(k): list(v) for k, v in (answers or {}).items()}
        self.ignore = set(ignore)
        self.servfail = set(servfail)
        self.queries = []          # (name, qtype name) in arrival order
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = None

    @staticmethod
    def _norm(name):
        return str(name).rstrip(".").lower()

    @property
    def address(self):
        """"IP:PORT", the form [protect.dnsbl] resolver takes."""
        return f"{self.host}:{self.port}"

    def count(self, name):
        """How many queries for `name` arrived so far."""
        n = self._norm(name)
        with self._lock:
            return sum(1 for q, _ in self.queries if q == n)

    def start(self):
        self._thread = threading.Thread(target=self._serve, name="dnsbl-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._wake_w.send(b"x")
            self._thread.join(timeout=10)
            self._thread = None
        for s in (self._sock, self._wake_r, self._wake_w):
            s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _serve(self):
        while True:
            ready, _, _ = select.select([self._sock, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                data, peer = self._sock.recvfrom(MAX_QUERY)
            except OSError:
                continue
            reply = self._reply(data)
            if reply is not None:
                self._sock.sendto(reply, peer)

    def _reply(self, data):
        try:
            request = DNSRecord.parse(data)
        except Exception:   # dnslib raises DNSError and others on garbage: not for us to answer
            return None
        name = self._norm(request.q.qname)
        qtype = request.q.qtype
        with self._lock:
            self.queries.append((name, QTYPE.get(qtype)))
            if _matches(name, self.ignore):
                return None
            reply = request.reply()          # QR, AA, RA; question echoed
            if _matches(name, self.servfail):
                reply.header.rcode = RCODE.SERVFAIL
            elif name in self.answers:
                if qtype in (QTYPE.A, QTYPE.ANY):
                    for addr in self.answers[name]:
                        reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(addr), ttl=TTL))
            else:
                reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--answer", action="append", default=[], metavar="NAME=IP[,IP...]")
    ap.add_argument("--ignore", action="append", default=[], metavar="NAME")
    ap.add_argument("--servfail", action="append", default=[], metavar="NAME")
    args = ap.parse_args()
    answers = {}
    for a in args.answer:
        name, _, addrs = a.partition("=")
        answers[name] = [x for x in addrs.split(",") if x]
    server = DnsblServer(answers, args.ignore, args.servfail, args.host, args.port)
    print(f"listening on {server.address}", flush=True)
    server.start()
    try:
        server._thread.join()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
