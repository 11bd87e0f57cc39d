"""A loopback authoritative DNS responder for tests (RFC 1035 messages over UDP, and TCP
for answers over 512 bytes), on 127.0.0.1 and a free port, built on Debian's python3-dnslib.

    with DnsServer({"example.org": [("MX", "10 mx1.example.org")],
                    "mx1.example.org": [("A", "127.0.0.5"), ("AAAA", "::1", 30)]}) as dns:
        toml = f'[dns]\\nservers = ["{dns.address}"]'
        dns.records["example.net"] = [("MX", "0 .")]     # changes apply to the next query
        dns.servfail.add("broken.example")                # SERVFAIL from now on
        assert dns.count("example.org", "MX") == 1

Records: {name: [(type, value) or (type, value, ttl), ...]}, types and values:
    A "192.0.2.1"   AAAA "2001:db8::1"   MX "10 mx.example.org" ("0 ." is a null MX)
    TXT "text" or ["string", "string"] (character-strings; a str over 255 bytes is split)
    CNAME "target.example"   TLSA "3 1 1 <hex>"   SOA "mname rname serial refresh retry expire minimum"
Default TTL: `ttl` (300 s).

Each query is answered by the first rule that matches its name (lower case, no trailing dot):
`ignore` (no reply at all: the client times out), `servfail` (SERVFAIL), `refused` (REFUSED),
`nxdomain` (NXDOMAIN even if records exist), then the records: CNAMEs are followed through
the records as an authoritative server would (unless the name is in `no_chase`, so the
client must ask again for the target); a name with records, or with records below it, but
none of the type asked for is NODATA; any other name is NXDOMAIN. In the rule sets "*"
matches every name and "*.zone" every name under zone; "/TYPE" after a pattern limits it to
queries of that type ("example.org/AAAA"). Negative answers carry an SOA in the
authority section: the nearest SOA record in `records` at or above the name, else one
made up with TTL and MINIMUM `negative_ttl` (None: no SOA, so nothing may be cached).
Every query is recorded in `queries` as (name, type name).

DNSSEC, as a validating resolver reports it (RFC 4035 §3.2.3): a reply gets the AD bit when
its query name, and every name a CNAME led to within the answer, match `secure` (same
patterns: "*", "name", "*.zone", "/TYPE"), and the query asked for it with AD or DO (RFC 6840
§5.7/§5.8); NXDOMAIN and NODATA answers for such names are secure too. Nothing is signed: the
client can only trust the bit from a resolver on its own host. `ad_queries` counts the
queries that set AD.

As a script (for tests in other languages and manual runs), it prints "listening on
127.0.0.1:PORT" and serves until killed:
    /usr/bin/python3 dns_server.py --port 0 --zone zone.json
    /usr/bin/python3 dns_server.py --record example.org=MX:10 mx1.example.org --record mx1.example.org=A:127.0.0.5
zone.json: {"records": {"example.org": [["MX", "10 mx1.example.org"], ["A", "127.0.0.1", 1]]},
            "nxdomain": [...], "servfail": [...], "refused": [...], "ignore": [...],
            "no_chase": [...], "secure": [...], "negative_ttl": 60, "ttl": 300}
"""

import argparse
import json
import select
import socket
import sys
import threading

from dnslib import AAAA, CNAME, MX, PTR, QTYPE, RCODE, RR, SOA, TLSA, TXT, A, DNSRecord

DEFAULT_TTL = 300            # seconds, for records written without one
DEFAULT_NEGATIVE_TTL = 60    # the made-up SOA's TTL and MINIMUM
MAX_QUERY = 4096             # bytes read per datagram
MAX_UDP_REPLY = 512          # RFC 1035 §4.2.1: longer answers are truncated (TC), then asked over TCP
TCP_IDLE_SECONDS = 10        # a TCP connection with no query for this long is closed
BIND_ATTEMPTS = 20           # tries at finding a port free for both UDP and TCP
MAX_CNAME_CHASE = 16         # CNAMEs followed within one answer
MAX_STRING = 255             # one character-string (RFC 1035 §3.3)
SUPPORTED = ("A", "AAAA", "MX", "TXT", "CNAME", "PTR", "TLSA", "SOA")


def _norm(name):
    name = str(name).rstrip(".").lower()
    return name if name else "."


def _matches(name, patterns, qtype=None):
    """True if a pattern covers `name`: "*", "name", "*.zone", each optionally "/TYPE"
    (e.g. "example.org/AAAA") to cover only queries of that type."""
    for p in patterns:
        p, _, ptype = p.partition("/")
        if ptype and ptype.upper() != qtype:
            continue
        if p == "*" or p == name or (p.startswith("*.") and name.endswith(p[1:])):
            return True
    return False


def _asked_do(request):
    """True when the query's EDNS0 OPT record has the DO bit (RFC 3225 §3)."""
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT and (rr.ttl >> 15) & 1:
            return True
    return False


def _txt_strings(value):
    if isinstance(value, (list, tuple)):
        parts = [v.encode() if isinstance(v, str) else bytes(v) for v in value]
    else:
        data = value.encode() if isinstance(value, str) else bytes(value)
        parts = [data[i:i + MAX_STRING] for i in range(0, len(data), MAX_STRING)] or [b""]
    return parts


def _rdata(rtype, value):
    """The dnslib rdata object for one record."""
    if rtype == "A":
        return A(value)
    if rtype == "AAAA":
        return AAAA(value)
    if rtype == "MX":
        pref, _, host = str(value).partition(" ")
        return MX(host.strip() or ".", int(pref))
    if rtype == "TXT":
        return TXT(_txt_strings(value))
    if rtype == "CNAME":
        return CNAME(value)
    if rtype == "PTR":
        return PTR(value)
    if rtype == "TLSA":
        usage, selector, mtype, data = str(value).split(None, 3)
        return TLSA(int(usage), int(selector), int(mtype), bytes.fromhex(data.replace(" ", "")))
    if rtype == "SOA":
        f = str(value).split()
        return SOA(f[0], f[1], tuple(int(x) for x in f[2:7]))
    raise ValueError(f"unsupported record type {rtype!r} (supported: {', '.join(SUPPORTED)})")


def _parse_record(spec):
    """(type, value) or (type, value, ttl) from a tuple/list, checked."""
    if len(spec) not in (2, 3):
        raise ValueError(f"a record is (type, value) or (type, value, ttl), not {spec!r}")
    rtype = str(spec[0]).upper()
    if rtype not in SUPPORTED:
        raise ValueError(f"unsupported record type {rtype!r} (supported: {', '.join(SUPPORTED)})")
    return (rtype, spec[1]) if len(spec) == 2 else (rtype, spec[1], int(spec[2]))


class DnsServer:
    """Runs in a daemon thread from start() (or `with`) to stop(). Thread-safe to reconfigure:
    `records`, `nxdomain`, `servfail`, `refused`, `ignore`, `no_chase`, `secure` and `negative_ttl` may
    be changed at any time and apply to the next query."""

    def __init__(self, records=None, nxdomain=(), servfail=(), refused=(), ignore=(), no_chase=(), secure=(),
                 negative_ttl=DEFAULT_NEGATIVE_TTL, ttl=DEFAULT_TTL, host="127.0.0.1", port=0):
        self.records = _Records(records or {})
        self.nxdomain = set(nxdomain)
        self.servfail = set(servfail)
        self.refused = set(refused)
        self.ignore = set(ignore)
        self.no_chase = set(_norm(n) for n in no_chase)
        self.secure = set(secure)
        self.ad_queries = 0        # queries with the AD bit set (RFC 6840 §5.7)
        self.negative_ttl = negative_ttl
        self.ttl = ttl
        self.queries = []          # (name, type name) in arrival order
        self._lock = threading.Lock()
        self._sock, self._tcp = _bind(host, port)
        self.host, self.port = self._sock.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = None

    @property
    def address(self):
        """"IP:PORT" ("[IPv6]:PORT"), the form [dns] servers takes."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def count(self, name, qtype=None):
        """How many queries for `name` (of type `qtype`, e.g. "MX") arrived so far."""
        n = _norm(name)
        with self._lock:
            return sum(1 for q, t in self.queries if q == n and (qtype is None or t == qtype))

    def clear_queries(self):
        with self._lock:
            self.queries.clear()

    def start(self):
        self._thread = threading.Thread(target=self._serve, name="dns-server", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._wake_w.send(b"x")
            self._thread.join(timeout=10)
            self._thread = None
        for s in (self._sock, self._tcp, self._wake_r, self._wake_w):
            s.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _serve(self):
        while True:
            ready, _, _ = select.select([self._sock, self._tcp, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            if self._tcp in ready:
                try:
                    conn, _ = self._tcp.accept()
                except OSError:
                    conn = None
                if conn is not None:
                    threading.Thread(target=self._serve_tcp, args=(conn,), daemon=True).start()
            if self._sock not in ready:
                continue
            try:
                data, peer = self._sock.recvfrom(MAX_QUERY)
            except OSError:
                continue
            reply = self._safe_reply(data)
            if reply is not None and len(reply) > MAX_UDP_REPLY:
                reply = self._truncated(data)   # TC: the client asks again over TCP
            if reply is not None:
                self._sock.sendto(reply, peer)

    def _serve_tcp(self, conn):
        """Queries over TCP (RFC 1035 §4.2.2: two length bytes before each message)."""
        conn.settimeout(TCP_IDLE_SECONDS)
        with conn:
            while True:
                head = _recv_exact(conn, 2)
                if head is None:
                    return
                data = _recv_exact(conn, int.from_bytes(head, "big"))
                if data is None:
                    return
                reply = self._safe_reply(data)
                if reply is not None:
                    try:
                        conn.sendall(len(reply).to_bytes(2, "big") + reply)
                    except OSError:
                        return

    def _safe_reply(self, data):
        try:
            return self._reply(data)
        except Exception as e:   # a bad record in the test's data: say so, keep serving
            print(f"dns_server: cannot answer: {e!r}", file=sys.stderr, flush=True)
            return None

    @staticmethod
    def _truncated(data):
        request = DNSRecord.parse(data)
        reply = request.reply()
        reply.header.tc = 1
        return reply.pack()

    def _rrs(self, name):
        return [_parse_record(r) for r in self.records.get(name, [])]

    def _exists(self, name):
        if name in self.records:
            return True
        suffix = "." + name
        return any(k.endswith(suffix) for k in self.records)

    def _soa(self, name):
        """The SOA RR for a negative answer about `name`, or None."""
        labels = name.split(".")
        for i in range(len(labels)):
            owner = ".".join(labels[i:])
            for r in self._rrs(owner):
                if r[0] == "SOA":
                    ttl = r[2] if len(r) > 2 else self.ttl
                    return RR(owner, QTYPE.SOA, rdata=_rdata("SOA", r[1]), ttl=ttl)
        if self.negative_ttl is None:
            return None
        owner = ".".join(labels[-2:]) if len(labels) >= 2 else name
        t = int(self.negative_ttl)
        return RR(owner, QTYPE.SOA, rdata=SOA(f"ns.{owner}", f"hostmaster.{owner}", (1, 3600, 600, 86400, t)), ttl=t)

    def _reply(self, data):
        try:
            request = DNSRecord.parse(data)
        except Exception:   # dnslib raises DNSError and others on garbage: not for us to answer
            return None
        qname = _norm(request.q.qname)
        qtype = request.q.qtype
        tname = QTYPE.get(qtype)
        with self._lock:
            self.queries.append((qname, tname))
            asked_ad = bool(request.header.ad) or _asked_do(request)
            if request.header.ad:
                self.ad_queries += 1
            if _matches(qname, self.ignore, tname):
                return None
            reply = request.reply()          # QR, AA, RA; question echoed
            reply.header.ad = 0              # dnslib copies the query's flags; set below when secure
            if _matches(qname, self.servfail, tname):
                reply.header.rcode = RCODE.SERVFAIL
                return reply.pack()
            if _matches(qname, self.refused, tname):
                reply.header.rcode = RCODE.REFUSED
                return reply.pack()
            name = qname
            secure = asked_ad and _matches(qname, self.secure, tname)
            answered = False   # records of the type asked for, or a CNAME the client must chase
            for _ in range(MAX_CNAME_CHASE + 1):
                if _matches(name, self.nxdomain, tname):
                    reply.header.rcode = RCODE.NXDOMAIN
                    break
                rrs = self._rrs(name)
                wanted = [r for r in rrs if getattr(QTYPE, r[0]) == qtype or qtype == QTYPE.ANY]
                cname = [r for r in rrs if r[0] == "CNAME"]
                if wanted:
                    for r in wanted:
                        ttl = r[2] if len(r) > 2 else self.ttl
                        reply.add_answer(RR(name, getattr(QTYPE, r[0]), rdata=_rdata(r[0], r[1]), ttl=ttl))
                    answered = True
                    break
                if cname and qtype != QTYPE.CNAME:
                    r = cname[0]
                    ttl = r[2] if len(r) > 2 else self.ttl
                    reply.add_answer(RR(name, QTYPE.CNAME, rdata=_rdata("CNAME", r[1]), ttl=ttl))
                    target = _norm(r[1])
                    if name in self.no_chase or not self._exists(target):
                        answered = True   # the client asks again for the target
                        break
                    name = target
                    secure = secure and _matches(name, self.secure, tname)
                    continue
                if not self._exists(name):
                    reply.header.rcode = RCODE.NXDOMAIN
                break
            if not answered:
                soa = self._soa(name)
                if soa is not None:
                    reply.add_auth(soa)
            reply.header.ad = 1 if secure else 0
        return reply.pack()


def _bind(host, port):
    """A UDP and a TCP socket on the same port (a free one when `port` is 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(BIND_ATTEMPTS):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((host, port))
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, udp.getsockname()[1]))
            tcp.listen(16)
            return udp, tcp
        except OSError:
            udp.close()
            tcp.close()
            if port:
                raise
    raise OSError(f"no port free for both UDP and TCP on {host}")


def _recv_exact(conn, n):
    data = b""
    while len(data) < n:
        try:
            chunk = conn.recv(n - len(data))
        except OSError:
            return None
        if not chunk:
            return None
        data += chunk
    return data


class _Records(dict):
    """The records dict, with names normalised on the way in."""

    def __init__(self, records):
        super().__init__()
        for k, v in records.items():
            self[k] = v

    def __setitem__(self, key, value):
        super().__setitem__(_norm(key), [_parse_record(r) for r in value])

    def get(self, key, default=None):
        return super().get(_norm(key), default)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--zone", metavar="FILE", help="JSON: {\"records\": {...}, \"nxdomain\": [...], ...}")
    ap.add_argument("--record", action="append", default=[], metavar="NAME=TYPE:VALUE[:TTL]")
    for flag in ("nxdomain", "servfail", "refused", "ignore", "no-chase", "secure"):
        ap.add_argument(f"--{flag}", action="append", default=[], metavar="NAME")
    ap.add_argument("--negative-ttl", type=int, default=DEFAULT_NEGATIVE_TTL)
    ap.add_argument("--ttl", type=int, default=DEFAULT_TTL)
    args = ap.parse_args()
    zone = {}
    if args.zone:
        with open(args.zone) as f:
            zone = json.load(f)
    records = {k: [tuple(r) for r in v] for k, v in zone.get("records", {}).items()}
    for spec in args.record:
        name, _, rest = spec.partition("=")
        rtype, _, value = rest.partition(":")
        ttl = None
        if rtype.upper() not in ("AAAA", "TLSA") and value.rsplit(":", 1)[-1].isdigit() and ":" in value:
            value, _, t = value.rpartition(":")
            ttl = int(t)
        records.setdefault(name, []).append((rtype, value) if ttl is None else (rtype, value, ttl))
    server = DnsServer(
        records,
        nxdomain=zone.get("nxdomain", []) + args.nxdomain,
        servfail=zone.get("servfail", []) + args.servfail,
        refused=zone.get("refused", []) + args.refused,
        ignore=zone.get("ignore", []) + args.ignore,
        no_chase=zone.get("no_chase", []) + args.no_chase,
        secure=zone.get("secure", []) + args.secure,
        negative_ttl=zone.get("negative_ttl", args.negative_ttl),
        ttl=zone.get("ttl", args.ttl),
        host=args.host,
        port=args.port,
    )
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
