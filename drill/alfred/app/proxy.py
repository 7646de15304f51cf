"""Role ``proxy``: TLS termination on TLS_PORT in front of the api (drill/src/proxy.ts). The certificate
is TLS_DIR/server.crt + server.key; SIGHUP reloads it (new connections get the new one); without it
the proxy logs an error and exits 1.

Run:  python3 -m app.proxy   (or python3 -m app proxy)
"""
from __future__ import annotations

import http.client
import http.server
import os
import signal
import socket
import ssl
import sys
import threading
import time
from typing import Any

from .config import Config, load_config
from .http import client_ip
from .log import err_text, log, set_log_base
from .metrics import js_round

HANDSHAKE_TIMEOUT_S = 10
UPSTREAM_TIMEOUT_S = 65
#: Hop-by-hop headers are the proxy's own business on each side.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


def tls_context(tls_dir: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(tls_dir, "server.crt"), os.path.join(tls_dir, "server.key"))
    return ctx


class ProxyHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "TlsProxyServer"

    def setup(self) -> None:
        conn: ssl.SSLSocket = self.request
        conn.settimeout(HANDSHAKE_TIMEOUT_S)
        try:
            conn.do_handshake()
        except (ssl.SSLError, OSError) as exc:
            log("warn", "tls handshake failed", err=err_text(exc))
            raise
        conn.settimeout(None)
        super().setup()

    def handle(self) -> None:
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError, socket.timeout):
            self.close_connection = True

    def _forward(self) -> None:
        started = time.monotonic()
        peer = self.client_address[0]
        socket_ip = peer[7:] if peer.startswith("::ffff:") else peer
        prior = self.headers.get_all("x-forwarded-for")
        ip = client_ip(", ".join(prior) if prior else None, socket_ip)
        path = self.path.split("?", 1)[0]
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length > 0 else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP and k.lower() != "x-forwarded-for"}
        headers["x-forwarded-for"] = f"{', '.join(prior)}, {peer}" if prior else ip
        headers["x-forwarded-proto"] = "https"
        upstream = f"{self.server.cfg.api_host}:{self.server.cfg.port}"
        try:
            conn = http.client.HTTPConnection(self.server.cfg.api_host, self.server.cfg.port, timeout=UPSTREAM_TIMEOUT_S)
            conn.request(self.command, self.path, body=body, headers=headers)
            up = conn.getresponse()
            data = up.read()
            up_headers = [(k, v) for k, v in up.getheaders() if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
            conn.close()
        except (OSError, http.client.HTTPException) as exc:
            log("error", "upstream error", err=err_text(exc), path=path, status=502, client_ip=ip)
            payload = b'{"error":"bad gateway"}'
            self.send_response(502)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response_only(up.status, up.reason)
        for k, v in up_headers:
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        log("info", None, method=self.command, path=path, status=up.status,
            duration_ms=js_round((time.monotonic() - started) * 1000), client_ip=ip, upstream=upstream)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _forward

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class TlsProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, cfg: Config, context: ssl.SSLContext):
        self.cfg = cfg
        self.context = context
        super().__init__(("0.0.0.0", cfg.tls_port), ProxyHandler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # The handshake runs in the connection's own thread (ProxyHandler.setup), with the context in
        # force when the connection was accepted: a reload affects new connections only.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # handshake failures are logged by the handler; a dropped client is not an error

    def reload(self) -> None:
        try:
            self.context = tls_context(self.cfg.tls_dir)
            log("info", "tls certificate reloaded")
        except (OSError, ssl.SSLError) as exc:
            log("error", "tls certificate reload failed", err=err_text(exc))


def main() -> None:
    set_log_base(role="proxy")
    cfg = load_config("proxy")
    cert_file = os.path.join(cfg.tls_dir, "server.crt")
    key_file = os.path.join(cfg.tls_dir, "server.key")
    missing = [f for f in (cert_file, key_file) if not os.path.exists(f)]
    if missing:
        log("error", "TLS certificate or key missing; cannot start the proxy", missing=",".join(missing), tls_dir=cfg.tls_dir)
        sys.exit(1)
    try:
        context = tls_context(cfg.tls_dir)
    except (OSError, ssl.SSLError) as exc:
        log("error", "TLS certificate or key unreadable; cannot start the proxy", err=err_text(exc), tls_dir=cfg.tls_dir)
        sys.exit(1)
    server = TlsProxyServer(cfg, context)
    signal.signal(signal.SIGHUP, lambda *_: threading.Thread(target=server.reload, daemon=True).start())

    def stop(*_: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log("info", "alfred tls proxy listening", port=cfg.tls_port, upstream=cfg.port)
    server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
