"""The loopback DNS responder (dns_server.py) that outbound e2e tests route mail with:
what it answers for each kind of name, so a test failing elsewhere can rule it out.
(The C++ resolver is tested against it in tests/unit/dns_resolver_test.cc.)"""

import socket
import subprocess
import sys
from pathlib import Path

from dnslib import QTYPE, RCODE, DNSRecord

from dns_server import DnsServer

ZONE = {
    "example.org": [("MX", "10 mx1.example.org"), ("MX", "20 mx2.example.org"), ("TXT", "v=spf1 -all")],
    "mx1.example.org": [("A", "127.0.0.5"), ("AAAA", "::1", 30)],
    "null.example": [("MX", "0 .")],
    "alias.example": [("CNAME", "mx1.example.org")],
    "_25._tcp.mx1.example.org": [("TLSA", "3 1 1 0a0b")],
    "long.example": [("TXT", "x" * 300)],
}


def ask(dns, name, qtype, timeout=2):
    reply = DNSRecord.question(name, qtype).send(dns.host, dns.port, timeout=timeout)
    return DNSRecord.parse(reply)


def test_answers_each_kind_of_name():
    with DnsServer(ZONE, servfail=["broken.example"], refused=["mx1.example.org/AAAA"]) as dns:
        assert dns.address == f"127.0.0.1:{dns.port}"
        r = ask(dns, "Example.ORG.", "MX")
        assert r.header.rcode == RCODE.NOERROR
        assert sorted((rr.rdata.preference, str(rr.rdata.label)) for rr in r.rr) == [
            (10, "mx1.example.org."), (20, "mx2.example.org.")]
        assert str(ask(dns, "null.example", "MX").rr[0].rdata.label) == "."
        a = ask(dns, "alias.example", "A")   # the CNAME, then its target's records
        assert [QTYPE.get(rr.rtype) for rr in a.rr] == ["CNAME", "A"]
        assert str(a.rr[1].rdata) == "127.0.0.5"
        assert ask(dns, "_25._tcp.mx1.example.org", "TLSA").rr[0].rdata.cert_data == b"\x0a\x0b"
        long_txt = ask(dns, "long.example", "TXT").rr[0].rdata.data
        assert [len(s) for s in long_txt] == [255, 45]   # split into character-strings

        nodata = ask(dns, "mx1.example.org", "MX")
        assert nodata.header.rcode == RCODE.NOERROR and not nodata.rr
        assert QTYPE.get(nodata.auth[0].rtype) == "SOA"   # negative answers carry an SOA
        nx = ask(dns, "nothing.example", "A")
        assert nx.header.rcode == RCODE.NXDOMAIN and nx.auth
        assert ask(dns, "broken.example", "A").header.rcode == RCODE.SERVFAIL
        assert ask(dns, "mx1.example.org", "AAAA").header.rcode == RCODE.REFUSED
        assert ask(dns, "mx1.example.org", "A").header.rcode == RCODE.NOERROR

        dns.ignore.add("example.org")
        try:
            ask(dns, "example.org", "MX", timeout=0.3)
            raise AssertionError("an ignored name was answered")
        except socket.timeout:
            pass
        dns.ignore.clear()
        dns.records["new.example"] = [("A", "192.0.2.9")]   # changes apply to the next query
        assert str(ask(dns, "new.example", "A").rr[0].rdata) == "192.0.2.9"
        assert dns.count("example.org", "MX") == 2
        assert dns.count("example.org") == 2


def test_runs_as_a_script():
    script = Path(__file__).parent / "dns_server.py"
    p = subprocess.Popen([sys.executable, str(script), "--port", "0", "--record", "example.org=MX:10 mx.example.org",
                          "--nxdomain", "gone.example"], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:")
        port = int(line.rsplit(":", 1)[1])
        r = DNSRecord.parse(DNSRecord.question("example.org", "MX").send("127.0.0.1", port, timeout=2))
        assert r.rr[0].rdata.preference == 10
        r = DNSRecord.parse(DNSRecord.question("gone.example", "A").send("127.0.0.1", port, timeout=2))
        assert r.header.rcode == RCODE.NXDOMAIN
    finally:
        p.terminate()
        p.wait()
