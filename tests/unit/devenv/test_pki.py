"""The local environment's certificates: issued by its CA, for the names clients use."""

from __future__ import annotations

import datetime
import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from canary.devenv import pki

START = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
END = START + pki.CERT_VALIDITY


def _authority() -> pki.Authority:
    return pki.Authority.new(START, END)


class TestAuthority:
    """The CA signs certificates and every leaf it issues, over one window."""

    def test_the_ca_may_sign_certificates(self) -> None:
        ca = _authority()
        constraints = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
        assert constraints.value.ca
        assert ca.cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign

    def test_a_leaf_is_signed_by_the_ca_for_its_usage_only(self) -> None:
        ca = _authority()
        subject = pki.subject_name("canary-devenv-admin", "system:masters")
        cert, key = ca.issue(subject, ExtendedKeyUsageOID.CLIENT_AUTH)
        cert.verify_directly_issued_by(ca.cert)
        assert cert.public_key() == key.public_key()
        assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
            "system:masters")
        usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        assert (cert.not_valid_before_utc, cert.not_valid_after_utc) == (START, END)


class TestServingCertificate:
    """The API server answers on loopback and as the ``kubernetes`` Service."""

    def test_it_names_loopback_and_the_in_cluster_service(self) -> None:
        cert, _ = _authority().issue(pki.subject_name("kube-apiserver"),
                                     ExtendedKeyUsageOID.SERVER_AUTH, pki.serving_names())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert {"localhost", "kubernetes.default.svc.cluster.local"} <= set(
            sans.get_values_for_type(x509.DNSName))
        assert set(sans.get_values_for_type(x509.IPAddress)) == {
            ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address(pki.KUBERNETES_SERVICE_IP)}
