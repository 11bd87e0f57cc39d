"""Issue 14 item 4: certificates taken from Traefik's acme.json as Traefik renews them
(docker-mailserver #2239: a renewal never loaded; #2804: an outdated entry served). The
entry served is the one whose certificate covers the names and expires last."""

import base64
import json
import os
import re
import shutil
import socket
import ssl
import stat
import tempfile
from pathlib import Path

import pytest
from cryptography import x509

from harness import HOSTNAME, Postern, make_cert, wait_until


def served_serial(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOSTNAME) as s:
            return x509.load_der_x509_certificate(s.getpeercert(binary_form=True)).serial_number


def entry(work, serial, days, names, v1=False):
    cert, key = make_cert(work / f"gen{serial}", cn=names[0], names=names, days=days, serial=serial)
    c = base64.b64encode(cert.read_bytes()).decode()
    k = base64.b64encode(key.read_bytes()).decode()
    if v1:
        return {"Domain": {"Main": names[0], "SANs": names[1:]}, "Certificate": c, "Key": k}
    return {"domain": {"main": names[0], "sans": names[1:]}, "certificate": c, "key": k, "Store": "default"}


def write_acme(path, data, in_place=False):
    """As Traefik does: the whole file rewritten, mode 0600 (in place, or via a rename)."""
    text = json.dumps(data, indent=2)
    if in_place:
        with open(path, "w") as f:
            f.write(text)
    else:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    os.chmod(path, 0o600)


def traefik_server(d, acme, resolver=None, names=None, **kw):
    lines = ["[tls]", "[[tls.traefik]]", f'file = "{acme}"']
    if resolver:
        lines.append(f'resolver = "{resolver}"')
    if names:
        lines.append("names = [" + ", ".join(f'"{n}"' for n in names) + "]")
    return Postern(d, tls=False, extra_toml="\n".join(lines), listeners=[("submissions", "off")], **kw)


@pytest.fixture
def acme_v2(tmp_path):
    work = tmp_path / "gen"
    data = {
        "le": {"Account": {"Email": "admin@example.test"}, "Certificates": [
            entry(work, 11, 10, [HOSTNAME]),                        # outdated, still listed first
            entry(work, 12, 90, [HOSTNAME, "smtp.example.test"]),   # the renewal
            entry(work, 13, 300, ["www.example.test"]),             # another name
        ]},
        "other": {"Account": None, "Certificates": [entry(work, 14, 200, ["*.example.test"])]},
    }
    acme = tmp_path / "traefik" / "acme.json"
    acme.parent.mkdir()
    write_acme(acme, data)
    return acme, data, work


def test_serves_the_entry_that_expires_last_and_reloads_renewals(tmp_path, acme_v2):
    acme, data, work = acme_v2
    with traefik_server(tmp_path / "p", acme, resolver="le") as p:
        port = p.ports["submissions"]
        assert served_serial(port) == 12   # not 11 (first match), not 14 (other resolver)
        ev = p.log_events("tls.certificate")
        assert len(ev) == 1 and "resolver le, entry 2" in ev[0]["file"], ev
        # Traefik renews: a newer entry is appended and the file rewritten in place.
        data["le"]["Certificates"].append(entry(work, 15, 120, [HOSTNAME]))
        write_acme(acme, data, in_place=True)
        wait_until(lambda: served_serial(port) == 15, timeout=20, interval=0.5, what="the renewal from acme.json")
        # A broken rewrite keeps the last good certificate.
        acme.write_text("{ truncated")
        wait_until(lambda: p.log_events("tls.reload_failed"), timeout=20, what="tls.reload_failed")
        assert served_serial(port) == 15


def test_any_resolver_and_wildcards(tmp_path, acme_v2):
    acme, _, _ = acme_v2
    with traefik_server(tmp_path / "p", acme) as p:
        assert served_serial(p.ports["submissions"]) == 14   # *.example.test, expires last


def test_v1_layout(tmp_path):
    work = tmp_path / "gen"
    acme = tmp_path / "acme.json"
    write_acme(acme, {"Account": {}, "Certificates": [entry(work, 21, 60, [HOSTNAME], v1=True)]})
    with traefik_server(tmp_path / "p", acme) as p:
        assert served_serial(p.ports["submissions"]) == 21


def test_config_check_names_what_the_file_holds(tmp_path, acme_v2):
    acme, _, _ = acme_v2
    p = traefik_server(tmp_path / "p", acme, resolver="le", names=["imap.example.org"])
    r = p.cli("config", "check", check=False)
    assert r.returncode == 1
    assert "holds no certificate for imap.example.org from resolver le; it has:" in r.stderr, r.stderr
    assert "www.example.test" in r.stderr
    p = traefik_server(tmp_path / "q", acme, resolver="nope")
    r = p.cli("config", "check", check=False)
    assert r.returncode == 1 and "has no certificate resolver 'nope' (it has: le, other)" in r.stderr, r.stderr
    p = traefik_server(tmp_path / "r", acme, resolver="le")
    r = p.cli("config", "check", check=False)
    assert r.returncode == 0, r.stderr
    assert "resolver le, entry 2" in r.stderr and "days left" in r.stderr


def test_root_only_acme_json_after_the_privilege_drop(acme_v2):
    """Traefik's file is root's, 0600; the daemon serving as postern reads it through the
    privileged reader, renewals included."""
    acme, data, work = acme_v2
    d = Path(tempfile.mkdtemp(prefix="postern-traefik-", dir="/tmp"))
    try:
        os.chmod(d, 0o755)
        private = d / "traefik"
        private.mkdir(mode=0o700)
        shutil.copy(acme, private / "acme.json")
        os.chmod(private / "acme.json", 0o600)
        with traefik_server(d / "p", private / "acme.json", resolver="le", user=None) as p:
            assert p.wait_event("server.privileges")["status"] == "dropped"
            port = p.ports["submissions"]
            assert served_serial(port) == 12
            data["le"]["Certificates"].append(entry(work, 16, 150, [HOSTNAME]))
            write_acme(private / "acme.json", data)
            wait_until(lambda: served_serial(port) == 16, timeout=20, interval=0.5, what="the renewal")
            assert stat.S_IMODE((private / "acme.json").stat().st_mode) == 0o600
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_cert_status_lists_every_source(tmp_path, acme_v2):
    """`postern cert status`: the [tls] file and the Traefik entry, each with its names,
    issuer, expiry and days left; an unusable source is an error line and exit 1."""
    acme, _, _ = acme_v2
    p = Postern(tmp_path / "p", listeners=[("submissions", "off")],
                extra_toml=f'[[tls.traefik]]\nfile = "{acme}"\nresolver = "le"\nnames = ["smtp.example.test"]')
    text = p.config_path.read_text()   # [[tls.traefik]] belongs under the harness's [tls]
    text = text.replace(f'[[tls.traefik]]\nfile = "{acme}"', "").replace('resolver = "le"\nnames = ["smtp.example.test"]', "")
    text = text.replace(f'key = "{p.key}"', f'key = "{p.key}"\n[[tls.traefik]]\nfile = "{acme}"\nresolver = "le"\n'
                        'names = ["smtp.example.test"]')
    p.config_path.write_text(text)
    r = p.cli("cert", "status", check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("ok names=mail.example.test,localhost ") and f'source="{p.cert}"' in lines[0], lines
    assert re.search(r" days_left=36[45] ", lines[0]) and 'issuer="/CN=mail.example.test"' in lines[0]
    assert lines[1].startswith("ok names=mail.example.test,smtp.example.test ") and "resolver le, entry 2" in lines[1]
    assert "serial=0C " in lines[1] and re.search(r" days_left=(89|90) ", lines[1]), lines[1]
    assert lines[1].endswith(" renewal=external"), lines[1]
    acme.write_text("{ broken")
    r = p.cli("cert", "status", check=False)
    assert r.returncode == 1
    assert r.stdout.splitlines()[1].startswith(f'error source={acme} (resolver le) reason="'), r.stdout
    r = p.cli("cert", "renew", check=False)
    assert r.returncode == 1 and "needs the built-in ACME client" in r.stderr
