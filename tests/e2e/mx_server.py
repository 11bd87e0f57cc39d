#!/usr/bin/python3
"""A configurable receiving SMTP server for tests of outbound delivery (Debian's
python3-aiosmtpd). It stands in for a remote MX or relay:

    with MxServer(host="127.0.0.5", rules={"perm@": (550, "5.1.1 no such user")}) as mx:
        ...  # deliver to 127.0.0.5:mx.port
        mx.messages[0].rcpt_tos, mx.messages[0].data
        mx.set_rule("temp@", None)          # a recipient recovers

Script mode, for a test in another process or language (prints "PORT <n>" and then serves
until killed; each accepted message is also written to --record-dir as NNNN.json + NNNN.eml):

    /usr/bin/python3 mx_server.py --host 127.0.0.1 --port 0 --record-dir DIR \
        [--starttls CERT KEY | --implicit-tls CERT KEY] [--user NAME:PASSWORD ...] \
        [--rule 'temp@=451 4.3.0 try later' ...] [--no-pipelining] [--no-size | --size N] \
        [--smtputf8] [--dsn] [--greeting '554 5.3.2 no service'] [--ehlo '502 5.5.1 no EHLO']

Rules match a recipient address by substring ("perm@" matches "perm@example.org"); the
first matching rule (in insertion order) answers the RCPT, anything else is accepted.
"""

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

DSN_PARAMS = ("RET", "ENVID", "NOTIFY", "ORCPT")
warnings.filterwarnings("ignore", message=".*login_data.*")


@dataclass
class Message:
    mail_from: str
    rcpt_tos: list
    mail_options: list      # MAIL parameters as sent ("SIZE=123", "BODY=8BITMIME", "ENVID=x+2By")
    rcpt_options: list      # one list per accepted recipient, as sent ("NOTIFY=SUCCESS,FAILURE")
    tls: bool
    auth_user: str          # None when the session did not authenticate
    data: bytes             # the message as received, dot-stuffing undone, CRLF line ends
    peer: tuple = None
    received_at: float = field(default_factory=time.time)

    def to_json(self):
        return {"mail_from": self.mail_from, "rcpt_tos": self.rcpt_tos, "mail_options": self.mail_options,
                "rcpt_options": self.rcpt_options, "tls": self.tls, "auth_user": self.auth_user,
                "peer": list(self.peer) if self.peer else None, "received_at": self.received_at}


def read_records(directory):
    """Messages recorded by a server in another process (--record-dir), oldest first: a list
    of dicts as Message.to_json() with "data" (bytes) added."""
    out = []
    for meta in sorted(Path(directory).glob("*.json")):
        d = json.loads(meta.read_text())
        d["data"] = meta.with_suffix(".eml").read_bytes()
        out.append(d)
    return out


class _Session(SMTP):
    """aiosmtpd's SMTP with the switches this server needs: a refused greeting or EHLO, DSN
    parameters accepted (aiosmtpd 1.4 answers 555 to any it does not know), the raw MAIL/RCPT
    parameters kept for the record."""

    def __init__(self, mx, *args, **kwargs):
        self._mx = mx
        super().__init__(*args, **kwargs)

    async def _handle_client(self):
        self._mx.connections += 1
        if self._mx.greeting is not None:
            code, text = self._mx.greeting
            await self.push(f"{code} {text}")
            self.transport.close()
            return
        await super()._handle_client()

    def _getparams(self, params):
        result = super()._getparams(params)
        if result is not None and self._mx.dsn:
            for k in DSN_PARAMS:
                result.pop(k, None)
        return result

    @staticmethod
    def _raw_params(arg):
        # "FROM:<a@b> SIZE=1 RET=HDRS" -> ["SIZE=1", "RET=HDRS"] (case kept).
        if not arg:
            return []
        end = arg.find(">")
        rest = arg[end + 1:] if end >= 0 else arg.split(None, 1)[1] if len(arg.split(None, 1)) > 1 else ""
        return rest.split()

    async def smtp_MAIL(self, arg):
        self._mx._pending_mail_params[id(self)] = self._raw_params(arg)
        await super().smtp_MAIL(arg)

    async def smtp_RCPT(self, arg):
        self._mx._pending_rcpt_params[id(self)] = self._raw_params(arg)
        await super().smtp_RCPT(arg)


class _Handler:
    def __init__(self, mx):
        self.mx = mx

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        mx = self.mx
        if mx.ehlo is not None:
            code, text = mx.ehlo
            return [f"{code} {text}"]
        session.host_name = hostname
        keep = []
        for r in responses[:-1]:  # the last is "250 HELP"
            word = r[4:].split(" ", 1)[0].upper()
            if word == "SIZE" and mx.size is None:
                continue
            if word == "SMTPUTF8" and not mx.smtputf8:
                continue
            if word == "AUTH":
                if not mx.users:
                    continue
                r = "250-AUTH " + " ".join(mx.auth_mechanisms)
            keep.append(r)
        if mx.size == 0:
            keep.append("250-SIZE")
        if mx.pipelining:
            keep.append("250-PIPELINING")
        if mx.dsn:
            keep.append("250-DSN")
        keep.append("250-ENHANCEDSTATUSCODES")
        keep.append("250 HELP")
        return keep

    async def handle_HELO(self, server, session, envelope, hostname):
        if self.mx.helo is not None:
            code, text = self.mx.helo
            return f"{code} {text}"
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(self.mx._pending_mail_params.pop(id(server), mail_options))
        envelope.x_rcpt_params = []
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        params = self.mx._pending_rcpt_params.pop(id(server), rcpt_options)
        rule = self.mx.rule_for(address)
        if rule is not None:
            code, text = rule
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        envelope.x_rcpt_params.append(params)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        mx = self.mx
        if mx.data_reply is not None:
            code, text = mx.data_reply
            return f"{code} {text}"
        tls = server.transport.get_extra_info("ssl_object") is not None
        user = session.auth_data if session.authenticated else None
        if isinstance(user, bytes):
            user = user.decode("utf-8", "replace")
        msg = Message(mail_from="" if envelope.mail_from == "<>" else envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos),
                      mail_options=list(envelope.mail_options),
                      rcpt_options=list(getattr(envelope, "x_rcpt_params", [])), tls=tls, auth_user=user,
                      data=envelope.original_content or envelope.content, peer=session.peer)
        mx._record(msg)
        if mx.data_delay:
            await asyncio.sleep(mx.data_delay)   # the message is taken; the 250 comes late (or never)
        return "250 2.0.0 OK queued"


class MxServer:
    """A test SMTP server on its own thread and event loop. Use as a context manager or
    start()/stop(). Attributes may be changed while it runs (they are read per command)."""

    def __init__(self, host="127.0.0.1", port=0, starttls=None, implicit_tls=None, users=None,
                 auth_mechanisms=("PLAIN", "LOGIN"), auth_require_tls=True, rules=None, pipelining=True,
                 size=10 * 1024 * 1024, smtputf8=False, dsn=False, greeting=None, ehlo=None, helo=None,
                 data_reply=None, record_dir=None, hostname="mx.example.test", idle_timeout=None):
        """starttls / implicit_tls: (cert_path, key_path). users: {"name": "password"}.
        rules: {"substring": (code, "enhanced text")}.
        size: announced SIZE limit (None: no SIZE keyword, 0: SIZE without a limit).
        greeting / ehlo / helo / data_reply: (code, text) to answer instead of the normal reply."""
        self.host = host
        self.requested_port = port
        self.port = None
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.users = dict(users or {})
        self.auth_mechanisms = list(auth_mechanisms)
        self.auth_require_tls = auth_require_tls
        self._rules = dict(rules or {})
        self._rules_lock = threading.Lock()
        self.pipelining = pipelining
        self.size = size
        self.smtputf8 = smtputf8
        self.dsn = dsn
        self.greeting = greeting
        self.ehlo = ehlo
        self.helo = helo
        self.data_reply = data_reply
        self.record_dir = Path(record_dir) if record_dir else None
        self.hostname = hostname
        self.idle_timeout = idle_timeout   # seconds: aiosmtpd sends 421 and closes an idle session
        self.data_delay = 0                # seconds between taking a message and its 250
        self.messages = []
        self.connections = 0      # SMTP sessions opened (connection reuse shows as fewer than messages)
        self._messages_lock = threading.Lock()
        self._pending_mail_params = {}
        self._pending_rcpt_params = {}
        self._loop = None
        self._server = None
        self._thread = None

    # Rules ------------------------------------------------------------------------------

    def set_rule(self, pattern, reply):
        """reply: (code, text), or None to remove the rule (the recipient is accepted again)."""
        with self._rules_lock:
            if reply is None:
                self._rules.pop(pattern, None)
            else:
                self._rules[pattern] = tuple(reply)

    def set_rules(self, rules):
        with self._rules_lock:
            self._rules = dict(rules or {})

    def rule_for(self, address):
        with self._rules_lock:
            for pattern, reply in self._rules.items():
                if pattern in address:
                    return reply
        return None

    # Records ----------------------------------------------------------------------------

    def _record(self, msg):
        with self._messages_lock:
            self.messages.append(msg)
            n = len(self.messages)
        if self.record_dir:
            self.record_dir.mkdir(parents=True, exist_ok=True)
            base = self.record_dir / f"{n:04d}"
            Path(str(base) + ".eml").write_bytes(msg.data)
            tmp = Path(str(base) + ".json.tmp")
            tmp.write_text(json.dumps(msg.to_json()))
            os.replace(tmp, Path(str(base) + ".json"))  # the .json appears last, complete

    def wait_for_messages(self, count, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._messages_lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise TimeoutError(f"{len(self.messages)} messages arrived, {count} expected")

    # Running ----------------------------------------------------------------------------

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            if self.users.get(user) == password:
                return AuthResult(success=True, auth_data=user)
        return AuthResult(success=False, handled=False)

    @staticmethod
    def _ssl_context(pair):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(pair[0]), str(pair[1]))
        return ctx

    def _factory(self):
        kwargs = dict(hostname=self.hostname, ident="mx_server", enable_SMTPUTF8=True,
                      data_size_limit=self.size or None, decode_data=False,
                      authenticator=self._authenticate if self.users else None,
                      # aiosmtpd counts only STARTTLS as TLS: on implicit TLS the session is encrypted already.
                      auth_require_tls=self.auth_require_tls and not self.implicit_tls,
                      auth_exclude_mechanism=[m for m in ("PLAIN", "LOGIN") if m not in self.auth_mechanisms])
        if self.starttls:
            kwargs["tls_context"] = self._ssl_context(self.starttls)
        if self.idle_timeout:
            kwargs["timeout"] = self.idle_timeout
        return _Session(self, _Handler(self), **kwargs)

    def start(self):
        ready = threading.Event()
        error = []

        def run():
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
            try:
                ssl_ctx = self._ssl_context(self.implicit_tls) if self.implicit_tls else None
                self._server = self._loop.run_until_complete(
                    self._loop.create_server(self._factory, host=self.host, port=self.requested_port, ssl=ssl_ctx))
                self.port = self._server.sockets[0].getsockname()[1]
            except Exception as e:  # noqa: BLE001 - reported to the starting thread
                error.append(e)
                ready.set()
                return
            ready.set()
            self._loop.run_forever()
            self._server.close()
            self._loop.run_until_complete(self._server.wait_closed())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="mx_server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if error:
            raise error[0]
        return self

    def stop(self):
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _reply(text):
    code, _, rest = text.partition(" ")
    return int(code), rest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--hostname", default="mx.example.test")
    p.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--implicit-tls", nargs=2, metavar=("CERT", "KEY"))
    p.add_argument("--user", action="append", default=[], help="NAME:PASSWORD (enables AUTH)")
    p.add_argument("--auth-mechanisms", default="PLAIN,LOGIN")
    p.add_argument("--auth-without-tls", action="store_true", help="offer AUTH before TLS too")
    p.add_argument("--rule", action="append", default=[], help="'SUBSTRING=CODE TEXT'")
    p.add_argument("--no-pipelining", action="store_true")
    p.add_argument("--size", type=int, default=10 * 1024 * 1024)
    p.add_argument("--no-size", action="store_true")
    p.add_argument("--smtputf8", action="store_true")
    p.add_argument("--dsn", action="store_true")
    p.add_argument("--greeting", help="'CODE TEXT' instead of the 220 greeting (then close)")
    p.add_argument("--ehlo", help="'CODE TEXT' instead of the EHLO reply")
    p.add_argument("--helo", help="'CODE TEXT' instead of the HELO reply")
    p.add_argument("--data-reply", help="'CODE TEXT' instead of the reply after the message")
    p.add_argument("--record-dir")
    a = p.parse_args(argv)
    rules = {}
    for r in a.rule:
        pattern, _, reply = r.partition("=")
        rules[pattern] = _reply(reply)
    users = dict(u.split(":", 1) for u in a.user)
    mx = MxServer(host=a.host, port=a.port, hostname=a.hostname, starttls=a.starttls, implicit_tls=a.implicit_tls,
                  users=users, auth_mechanisms=[m.strip().upper() for m in a.auth_mechanisms.split(",") if m.strip()],
                  auth_require_tls=not a.auth_without_tls, rules=rules, pipelining=not a.no_pipelining,
                  size=None if a.no_size else a.size, smtputf8=a.smtputf8, dsn=a.dsn,
                  greeting=_reply(a.greeting) if a.greeting else None, ehlo=_reply(a.ehlo) if a.ehlo else None,
                  helo=_reply(a.helo) if a.helo else None,
                  data_reply=_reply(a.data_reply) if a.data_reply else None, record_dir=a.record_dir)
    mx.start()
    print(f"PORT {mx.port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        mx.stop()


if __name__ == "__main__":
    sys.exit(main())
