"""The local environment's kubeconfig: the admin's client certificate, inlined."""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

from canary.devenv import pki as pki_module


def write(path: Path, server: str, pki: pki_module.Pki) -> None:
    """Write a kubeconfig for ``server`` as the admin, readable by its owner only."""
    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": "canary-devenv",
        "clusters": [{"name": "canary-devenv", "cluster": {
            "server": server, "certificate-authority-data": b64(pki.ca_cert)}}],
        "users": [{"name": "canary-devenv-admin", "user": {
            "client-certificate-data": b64(pki.admin_cert),
            "client-key-data": b64(pki.admin_key)}}],
        "contexts": [{"name": "canary-devenv", "context": {
            "cluster": "canary-devenv", "user": "canary-devenv-admin"}}],
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
