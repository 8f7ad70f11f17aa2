"""The TLS certificate of Asterisk's secure WebSocket (wss://) for the browser phones.

A local Asterisk gets a self-signed certificate, made once per state folder
by `hotline asterisk up` (the openssl command line: the venv has no crypto
library) and kept afterwards: a site that puts its own certificate and key
at the same paths keeps them, nothing here overwrites an existing pair.
Browsers refuse a self-signed certificate unless told otherwise: the tests
start Chromium with `--ignore-certificate-errors-spki-list=<spki_hash>`.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

# a certificate the browser phones' page may be served from for a long while; renewing a
# self-signed one is deleting the pair and starting Asterisk again
DAYS = 825
SUBJECT = "/O=12345 hotline/CN=hotline asterisk wss"


class CertificateError(Exception):
    """The certificate could not be made or read; one-line message."""


@dataclass(frozen=True)
class WssCertificate:
    cert: Path
    key: Path


def certificate_paths(keys_dir: Path) -> WssCertificate:
    """Where the wss certificate and its key live (http.conf's tlscertfile, tlsprivatekey)."""
    return WssCertificate(cert=keys_dir / "wss-cert.pem", key=keys_dir / "wss-key.pem")


def subject_names(host: str) -> list[str]:
    """subjectAltName entries: loopback always, and the address Asterisk listens on."""
    names = ["DNS:localhost", "IP:127.0.0.1", "IP:::1"]
    if host and host not in ("0.0.0.0", "::", "127.0.0.1", "localhost"):
        try:
            names.append(f"IP:{ipaddress.ip_address(host)}")
        except ValueError:
            names.append(f"DNS:{host}")
    return names


def ensure_certificate(keys_dir: Path, host: str) -> WssCertificate:
    """The wss certificate and key in keys_dir, made (self-signed) only when missing."""
    paths = certificate_paths(keys_dir)
    if paths.cert.exists() and paths.key.exists():
        return paths
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    with tempfile.TemporaryDirectory(dir=keys_dir) as scratch:
        key, cert = Path(scratch) / "key.pem", Path(scratch) / "cert.pem"
        done = subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-sha256", "-days", str(DAYS), "-subj", SUBJECT,
             "-addext", "subjectAltName=" + ",".join(subject_names(host)),
             "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "keyUsage=critical,digitalSignature",
             "-addext", "extendedKeyUsage=serverAuth",
             "-keyout", str(key), "-out", str(cert)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise CertificateError(
                f"openssl could not make the wss certificate in {keys_dir}: "
                f"{done.stderr.strip().splitlines()[-1:] or done.returncode}"
            )
        key.chmod(0o600)
        cert.chmod(0o600)
        # the key first: a cert without its key is never left behind as "made"
        os.replace(key, paths.key)
        os.replace(cert, paths.cert)
    return paths


def spki_hash(cert: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)): what Chromium's spki list and HPKP name."""
    done = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-pubkey"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise CertificateError(f"openssl could not read {cert}: {done.stderr.strip()}")
    body = "".join(line for line in done.stdout.splitlines() if not line.startswith("-----"))
    return base64.b64encode(hashlib.sha256(base64.b64decode(body)).digest()).decode()
