"""A scripted milter (Sendmail milter protocol v6, the filter's side) on 127.0.0.1, for the
protocol edge cases rspamd does not easily produce (header changes, body replacement,
quarantine, discard, a reject with its own text at RCPT). Not a replacement for rspamd,
which test_milter_rspamd.py runs for the main path.

    with FakeMilter(on_eom=[FakeMilter.chgheader(1, "Subject", "changed"), FakeMilter.CONTINUE]) as m:
        toml = f'[[milter]]\\naddress = "{m.address}"'

`on_rcpt(address)` returns the reply packets for RCPT (default: continue); `on_eom` is the
list of packets sent at end of message (modifications, then the final reply). Every
command letter received is recorded in `commands`, header fields in `headers`, the body in
`body`, and the macros in `macros` ({name: value}, the last value seen).
"""

import socket
import struct
import threading


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


class FakeMilter:
    CONTINUE = packet(b"c")
    ACCEPT = packet(b"a")
    REJECT = packet(b"r")
    TEMPFAIL = packet(b"t")
    DISCARD = packet(b"d")

    @staticmethod
    def replycode(text):
        return packet(b"y", text.encode() + b"\0")

    @staticmethod
    def addheader(name, value):
        return packet(b"h", name.encode() + b"\0" + value.encode() + b"\0")

    @staticmethod
    def insheader(index, name, value):
        return packet(b"i", struct.pack(">I", index) + name.encode() + b"\0" + value.encode() + b"\0")

    @staticmethod
    def chgheader(index, name, value):
        return packet(b"m", struct.pack(">I", index) + name.encode() + b"\0" + value.encode() + b"\0")

    @staticmethod
    def replbody(data):
        return packet(b"b", data)

    @staticmethod
    def quarantine(reason):
        return packet(b"q", reason.encode() + b"\0")

    def __init__(self, on_eom=None, on_rcpt=None, actions=0x1FF, protocol=0):
        self.on_eom = on_eom if on_eom is not None else [self.CONTINUE]
        self.on_rcpt = on_rcpt or (lambda addr: [self.CONTINUE])
        self.actions, self.protocol = actions, protocol
        self.commands, self.headers, self.body, self.macros = [], [], b"", {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError
            buf += chunk
        return buf

    def _session(self, conn):
        conn.settimeout(30)
        try:
            while True:
                (length,) = struct.unpack(">I", self._read(conn, 4))
                data = self._read(conn, length)
                cmd, payload = data[:1], data[1:]
                self.commands.append(cmd.decode())
                out = self._answer(cmd, payload)
                if out is None:
                    return
                if out:
                    conn.sendall(out)
        except (EOFError, OSError):
            pass
        finally:
            conn.close()

    def _answer(self, cmd, payload):
        if cmd == b"O":
            return packet(b"O", struct.pack(">III", 6, self.actions, self.protocol))
        if cmd == b"D":
            parts = payload[1:].split(b"\0")
            for i in range(0, len(parts) - 1, 2):
                self.macros[parts[i].decode()] = parts[i + 1].decode()
            return b""
        if cmd == b"A":
            return b""
        if cmd == b"Q":
            return None
        if cmd == b"L":
            name, value = payload.split(b"\0")[:2]
            self.headers.append((name.decode(), value.decode()))
        if cmd == b"B":
            self.body += payload
        if cmd == b"R":
            return b"".join(self.on_rcpt(payload.split(b"\0")[0].decode()))
        if cmd == b"E":
            return b"".join(self.on_eom)
        return self.CONTINUE
