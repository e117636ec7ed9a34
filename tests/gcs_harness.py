"""Test harness: a real GCS server in a private network namespace, and commands run beside it.

    server = GcsServer(workdir)
    server.start()                      # unshare --mount --net, TLS on 127.0.0.1:443
    server.tool("mkbucket", "b")        # google-cloud-storage, through STORAGE_EMULATOR_HOST
    server.run([sys.executable, "-m", "trainer.task", "--output_dir", "gs://b/run"])
    server.stop()

Code under test runs in the server's namespaces through `nsenter`, so the host-name override
never reaches the rest of the machine. Needs root (or user namespaces), `unshare`, `nsenter`
and `ip`; `namespaces_unavailable()` says why not when they are missing.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.conftest import REPO_ROOT, SERVICE_VARIABLES
from tests.gcs_server import HOST_NAMES

START_TIMEOUT_SECS = 30


def namespaces_unavailable() -> Optional[str]:
    """Why a private mount + network namespace cannot be made here, or None when it can."""
    for tool in ("unshare", "nsenter", "ip", "mount"):
        if not shutil.which(tool):
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "--mount", "--net", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare --mount --net failed: {probe.stderr.strip() or probe.returncode}"
    return None


def write_certificate(directory: Path) -> Path:
    """A throwaway self-signed certificate for Google's storage host names; returns cert.pem."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST_NAMES[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in HOST_NAMES]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    cert_path = directory / "cert.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return cert_path


class GcsServer:
    """gcp-storage-emulator over TLS as storage.googleapis.com, in namespaces of its own."""

    def __init__(self, workdir: Path):
        self.workdir = Path(workdir)
        self.process: Optional[subprocess.Popen] = None
        self.pid: Optional[int] = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert = write_certificate(self.workdir)
        self.env = {
            "CURL_CA_BUNDLE": str(cert),  # TensorFlow's gs:// file system (libcurl)
            "REQUESTS_CA_BUNDLE": str(cert),  # google-cloud-storage (requests)
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "test-token",  # TensorFlow: a fixed bearer token
            "STORAGE_EMULATOR_HOST": f"https://{HOST_NAMES[0]}",  # google-cloud-storage
        }
        with open(self.workdir / "server.out", "w") as out:
            self.process = subprocess.Popen(
                # --kill-child: the server (unshare's forked child) dies with unshare, so that
                # stop() leaves no server behind.
                ["unshare", "--mount", "--net", "--fork", "--kill-child", sys.executable, "-m",
                 "tests.gcs_server",
                 "--workdir", str(self.workdir)],
                cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
        ready = self.workdir / "ready"
        deadline = time.time() + START_TIMEOUT_SECS
        while not ready.exists():
            if self.process.poll() is not None or time.time() > deadline:
                self.stop()
                raise RuntimeError("the GCS server did not start: "
                                   + (self.workdir / "server.out").read_text()[-3000:])
            time.sleep(0.1)
        self.pid = int(ready.read_text())

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def run(self, args: Sequence[str], *, env: Optional[Dict[str, str]] = None,
            timeout: float = 600) -> subprocess.CompletedProcess:
        """Run a command in the server's namespaces with the client settings; never raises."""
        full_env = {k: v for k, v in os.environ.items()
                    if k not in SERVICE_VARIABLES}
        full_env.update(self.env)
        full_env.update(env or {})
        return subprocess.run(
            ["nsenter", "--target", str(self.pid), "--net", "--mount", f"--wd={REPO_ROOT}", "--",
             *args],
            cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)

    def python(self, code: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run([sys.executable, "-c", code], **kwargs)

    def tool(self, *args: str) -> str:
        """Run tests/gcs_tool.py (google-cloud-storage) in the namespace; its stdout."""
        result = self.run([sys.executable, "-m", "tests.gcs_tool", *args], timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"gcs_tool {' '.join(args)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def set_faults(self, rules: List[Dict[str, object]]) -> None:
        """Fail matching requests from now on (see tests/gcs_server.py); [] stops."""
        temporary = self.workdir / "faults.json.tmp"
        temporary.write_text(json.dumps(rules))
        temporary.replace(self.workdir / "faults.json")

    def injected(self) -> List[str]:
        """The faults injected so far: 'ACTION METHOD PATH' lines."""
        log = self.workdir / "faults.log"
        return log.read_text().splitlines() if log.exists() else []
