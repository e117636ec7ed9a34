"""A real GCS JSON-API server (gcp-storage-emulator) over TLS, as storage.googleapis.com.

Run inside a private mount and network namespace (tests/gcs_harness.py starts it with
`unshare --mount --net --fork`): it brings loopback up, bind-mounts a hosts file that maps
Google's storage host names to 127.0.0.1, and serves HTTPS on 127.0.0.1:443 with a
throwaway certificate, so TensorFlow's built-in gs:// file system (endpoints compiled in) and
google-cloud-storage reach it exactly as they reach Cloud Storage.

    python -m tests.gcs_server --workdir DIR

It mends five things of the emulator that real clients trip over (fixed here, not avoided
in the trainer): a chunked upload body is decoded even when Content-Length is also sent; a
zero-byte upload (a directory marker) stores an empty object instead of crashing; upload
URLs it hands out say https; "Expect: 100-continue" is answered at once; the status of a
resumable upload with no bytes stored carries no Range header.

Faults are injected from DIR/faults.json, re-read on every request: a list of rules
{"method", "path_contains", "every", "action": "503"|"403"|"drop", "limit"}; every
`every`-th matching request gets the action, at most `limit` times.
"""

import argparse
import json
import logging
import os
import ssl
import subprocess
import sys
import threading
from http import server as http_server
from pathlib import Path

from gcp_storage_emulator import server as emulator
from gcp_storage_emulator.handlers import objects

HOST_NAMES = ("storage.googleapis.com", "www.googleapis.com", "oauth2.googleapis.com")
logger = logging.getLogger("gcs_server")


def _read_raw_data(handler):
    """Request body: chunked transfer encoding wins over Content-Length (RFC 9112 6.3)."""
    if (handler.headers.get("Transfer-Encoding") or "").lower() == "chunked":
        data = b""
        while True:
            size = int(handler.rfile.readline().strip() or b"0", 16)
            if size == 0:
                handler.rfile.readline()  # the blank line after the last chunk
                return data
            data += handler.rfile.read(size)
            handler.rfile.readline()
    length = handler.headers.get("Content-Length")
    return handler.rfile.read(int(length)) if length else None


_original_media_upload = objects._media_upload


def _media_upload(request, response, storage):
    if request.data is None:  # a zero-byte object, e.g. tf.io.gfile.makedirs' marker
        request._data = b""
    return _original_media_upload(request, response, storage)


def _resumable_incomplete(response, storage, upload_id, fallback_end=0):
    """308 for an unfinished resumable upload. With nothing stored yet it must carry no Range
    header (the emulator said "bytes=0-0", one byte, so a client resuming after a failed PUT
    restarted at byte 1 and was refused)."""
    response.status = objects.GoogleHTTPStatus.RESUME_INCOMPLETE
    received = storage.get_resumable_byte_count(upload_id)
    end = received - 1 if received > 0 else fallback_end
    if end > 0 or received > 0:
        response["Range"] = f"bytes=0-{end}"


_original_request_init = emulator.Request.__init__


def _request_init(self, *args, **kwargs):
    _original_request_init(self, *args, **kwargs)
    self._base_url = self._base_url.replace("http://", "https://", 1)
    self._full_url = self._base_url + self._path
    self._parsed_url = emulator.urlparse(self._full_url)


class FaultInjector:
    """Fails matching requests as DIR/faults.json says; counts what it did in DIR/faults.log."""

    def __init__(self, workdir: Path):
        self.rules_path = workdir / "faults.json"
        self.log_path = workdir / "faults.log"
        self.lock = threading.Lock()
        self.rules_text = ""
        self.counts = []

    def action_for(self, method: str, path: str):
        with self.lock:
            text = self.rules_path.read_text() if self.rules_path.exists() else "[]"
            if text != self.rules_text:
                self.rules_text, self.counts = text, [[0, 0] for _ in json.loads(text)]
            for rule, count in zip(json.loads(text), self.counts):
                if rule.get("method", method) != method or rule.get("path_contains", "") not in path:
                    continue
                count[0] += 1
                if count[0] % rule["every"] == 0 and count[1] < rule.get("limit", 10 ** 9):
                    count[1] += 1
                    with open(self.log_path, "a") as log:
                        log.write(f"{rule['action']} {method} {path}\n")
                    return rule["action"]
        return None


def make_handler(storage, faults: FaultInjector):
    class Handler(emulator.RequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(storage, *args, **kwargs)

        def parse_request(self) -> bool:
            # The emulator speaks HTTP/1.0, so http.server never answers libcurl's
            # "Expect: 100-continue", and curl waits a second before every upload body.
            parsed = super().parse_request()
            if parsed and (self.headers.get("Expect") or "").lower() == "100-continue":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return parsed

        def _inject(self) -> bool:
            action = faults.action_for(self.command, self.path)
            if action in ("503", "403"):
                self.send_response(int(action))
                self.send_header("Content-Length", "0")
                self.end_headers()
                self.close_connection = True
                return True
            if action == "drop":
                self.close_connection = True
                self.connection.close()
                return True
            return False

        def do_GET(self):
            self._inject() or super().do_GET()

        def do_POST(self):
            self._inject() or super().do_POST()

        def do_PUT(self):
            self._inject() or super().do_PUT()

        def do_DELETE(self):
            self._inject() or super().do_DELETE()

        def do_PATCH(self):
            self._inject() or super().do_PATCH()

    return Handler


def enter_namespace_network(workdir: Path) -> None:
    """Loopback up, and the storage host names mapped to it, in this (private) namespace."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hosts = workdir / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost\n127.0.0.1 " + " ".join(HOST_NAMES) + "\n")
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path,
                        help="holds cert.pem, key.pem, faults.json and the logs")
    parser.add_argument("--port", type=int, default=443)
    args = parser.parse_args()
    logging.basicConfig(filename=args.workdir / "server.log", level=logging.INFO,
                        format="%(asctime)s %(message)s")
    enter_namespace_network(args.workdir)

    emulator._read_raw_data = _read_raw_data
    objects._media_upload = _media_upload
    objects._resumable_incomplete = _resumable_incomplete
    emulator.Request.__init__ = _request_init
    storage = emulator.Storage(use_memory_fs=True)
    faults = FaultInjector(args.workdir)
    httpd = http_server.ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(storage, faults))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.workdir / "cert.pem", args.workdir / "key.pem")
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    (args.workdir / "ready").write_text(str(os.getpid()))
    logger.info("serving https://127.0.0.1:%d for %s", args.port, ", ".join(HOST_NAMES))
    httpd.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
