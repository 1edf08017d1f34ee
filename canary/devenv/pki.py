"""The certificates and keys of one local control plane, made fresh for every run."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The cluster IP of the ``kubernetes`` Service: the first address of the service range.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"
CERT_VALIDITY = datetime.timedelta(days=7)


@dataclass(frozen=True)
class Pki:
    """Paths of the PEM files; ``ca`` signs the serving and the admin client certificate."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_pub: Path


def subject_name(common_name: str, organization: str | None = None) -> x509.Name:
    """A certificate's name; Kubernetes reads the organization as the user's group."""
    parts = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(parts)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


@dataclass(frozen=True)
class Authority:
    """The CA, and the validity window of every certificate it issues."""

    name: x509.Name
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate
    not_before: datetime.datetime
    not_after: datetime.datetime

    @classmethod
    def new(cls, not_before: datetime.datetime, not_after: datetime.datetime) -> Authority:
        """A self-signed CA that may sign certificates and nothing else."""
        key = _key()
        name = subject_name("canary-devenv-ca")
        usage = x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                              content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False,
                              encipher_only=False, decipher_only=False)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(not_before).not_valid_after(not_after)
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(usage, critical=True)
                .sign(key, hashes.SHA256()))
        return cls(name, key, cert, not_before, not_after)

    def issue(self, subject: x509.Name, usage: x509.ObjectIdentifier,
              sans: list[x509.GeneralName] | None = None
              ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        """A leaf certificate for ``subject`` with its new key, for one extended usage."""
        key = _key()
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(self.name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(self.not_before).not_valid_after(self.not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return builder.sign(self.key, hashes.SHA256()), key


def serving_names() -> list[x509.GeneralName]:
    """The API server's names: loopback, and the ``kubernetes`` Service in-cluster."""
    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
           "kubernetes.default.svc.cluster.local"]
    sans: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(ip))
             for ip in ("127.0.0.1", KUBERNETES_SERVICE_IP)]
    return sans


def create(directory: Path) -> Pki:
    """Write a CA, a serving certificate for loopback and the in-cluster names, an admin
    client certificate (group ``system:masters``) and the ServiceAccount signing key."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    ca = Authority.new(now, now + CERT_VALIDITY)
    serving, serving_key = ca.issue(subject_name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH,
                                    serving_names())
    admin, admin_key = ca.issue(subject_name("canary-devenv-admin", "system:masters"),
                                ExtendedKeyUsageOID.CLIENT_AUTH)
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    pki = Pki(
        ca_cert=directory / "ca.crt", ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt", serving_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt", admin_key=directory / "admin.key",
        service_account_key=directory / "sa.key", service_account_pub=directory / "sa.pub",
    )
    _write_cert(pki.ca_cert, ca.cert)
    _write_key(pki.ca_key, ca.key)
    _write_cert(pki.serving_cert, serving)
    _write_key(pki.serving_key, serving_key)
    _write_cert(pki.admin_cert, admin)
    _write_key(pki.admin_key, admin_key)
    _write_key(pki.service_account_key, sa_key)
    pki.service_account_pub.write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return pki
