#!/usr/bin/python3
"""A test HTTPS server for MTA-STS policy fetches (RFC 8461 §3.3).

Serves whatever the response file describes, re-read on every request so a test can change
the policy (or break it) between fetches without restarting the server:

    {"status": 200, "content_type": "text/plain", "body": "version: STSv1\\n...",
     "headers": {"Location": "https://elsewhere/"}, "chunked": false}

Every request is appended to the log file as one line "METHOD PATH HOST", so a test can count
fetches. The listening port (0: any free one) is printed on stdout as "port N".

    mta_sts_server.py --cert C --key K --response R --log L [--host 127.0.0.1] [--port 0]

Used by tests/unit/mta_sts_test.cc and reusable from the e2e tests.
"""
import argparse
import http.server
import json
import ssl
import sys
import threading


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--response", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    log_lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt, *a):  # quiet: the log file is the record
            pass

        def do_GET(self):
            with log_lock, open(args.log, "a") as f:
                f.write(f"GET {self.path} {self.headers.get('Host', '')}\n")
            with open(args.response) as f:
                spec = json.load(f)
            body = spec.get("body", "").encode()
            self.send_response(spec.get("status", 200))
            if spec.get("content_type") is not None:
                self.send_header("Content-Type", spec.get("content_type", "text/plain"))
            for k, v in spec.get("headers", {}).items():
                self.send_header(k, v)
            self.send_header("Connection", "close")
            if spec.get("chunked"):
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                step = 1000
                for i in range(0, len(body), step):
                    part = body[i:i + step]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            self.close_connection = True

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request, client_address):
            pass  # clients that hang up (refused certificate, oversized body) are expected

    httpd = Server((args.host, args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    print(f"port {httpd.server_address[1]}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
