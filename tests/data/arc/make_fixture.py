#!/usr/bin/python3
"""Writes the ARC fixture of tests/unit/dkim_verify_test.cc with Debian's python3-dkim
(dkim.arc_sign), once; the outputs are committed. Re-running makes new keys and new files.

    cd tests/data/arc && /usr/bin/python3 make_fixture.py

Outputs: hop1.pem, hop2.pem (RSA 2048 and 1024), dns.txt ("name TXT-value" per line),
chain1.eml .. chain3.eml (1, 2 and 3 ARC sets; hop 2 appends a list footer to the body, so
AMS i=1 no longer verifies on chain2/chain3 but the chain still passes), all CRLF, sealed at
t=1700000000. arc_verify must say pass on every chain (checked here)."""

import base64
import subprocess

import dkim

NOW = 1700000000
KEYS = {"hop1.pem": 2048, "hop2.pem": 1024}
HOPS = [  # (domain, selector, key file)
    ("hop1.example", "arc1", "hop1.pem"),
    ("hop2.example", "arc2", "hop2.pem"),
    ("hop3.example", "arc3", "hop1.pem"),
]


def txt_value(pem):
    der = subprocess.run(["openssl", "pkey", "-pubout", "-outform", "DER"], input=pem, capture_output=True,
                         check=True).stdout
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def main():
    pems = {}
    for name, bits in KEYS.items():
        pem = subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"],
                             capture_output=True, check=True).stdout
        pem = subprocess.run(["openssl", "rsa", "-traditional"], input=pem, capture_output=True, check=True).stdout
        open(name, "wb").write(pem)
        pems[name] = pem
    with open("dns.txt", "w") as f:
        for domain, selector, key in HOPS:
            f.write(f"{selector}._domainkey.{domain} {txt_value(pems[key])}\n")

    msg = (b"From: Ann <ann@origin.example>\r\nTo: list@hop2.example\r\nSubject: ARC fixture\r\n"
           b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <arc-fixture@origin.example>\r\n"
           b"\r\nHello list.\r\n")
    dnsfunc = lambda name, timeout=5: {f"{s}._domainkey.{d}.".encode(): txt_value(pems[k]).encode()
                                       for d, s, k in HOPS}.get(name)
    for n, (domain, selector, key) in enumerate(HOPS, start=1):
        arc = "none" if n == 1 else "pass"
        msg = f"Authentication-Results: {domain}; arc={arc}; spf=pass smtp.mailfrom=origin.example\r\n".encode() + msg
        if n == 2:
            msg += b"-- \r\nlist footer\r\n"
        if n == 1:  # no arc= result for the first hop: cv=none
            msg = msg.replace(b" arc=none;", b"", 1)
        sets = dkim.arc_sign(msg, selector.encode(), domain.encode(), pems[key], domain.encode(), timestamp=NOW)
        assert sets, f"arc_sign made no set at hop {n}"
        msg = b"".join(sets) + msg
        cv, _, reason = dkim.arc_verify(msg, dnsfunc=dnsfunc)
        assert cv == dkim.CV_Pass, (n, cv, reason)
        open(f"chain{n}.eml", "wb").write(msg)


if __name__ == "__main__":
    main()
