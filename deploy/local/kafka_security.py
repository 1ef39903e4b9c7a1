"""The local broker's SASL_SSL listener: a CA, the broker's certificate, SCRAM users.

Made once, together with the storage format (SCRAM credentials live in the KRaft metadata and
`kafka-storage format --add-scram` is the only way to add them without a running broker):

    <kafka_dir>/security/ca.pem                  the CA clients trust (AGENT_RUNTIME_KAFKA_SSL_CAFILE)
    <kafka_dir>/security/ca-key.pem              the CA's key (signs the broker's certificate)
    <kafka_dir>/security/broker.pem              the broker's key + certificate (PEM keystore)
    <kafka_dir>/security/users/<name>.password   one SCRAM/PLAIN user each (…_SASL_PASSWORD_FILE)

A data directory formatted before this existed has no users: the broker then starts without the
SASL_SSL listener (`infra.py reset kafka` makes a new one with it).
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from settings import InfraSettings

# The principals of the trust model (docs/security.md): one per service, the operator's CLI, a
# gateway, an external publisher (`integrator`), and `admin` (super user on this listener).
USERS = (
    "admin",
    "session-commands",
    "agent-orchestration",
    "llm-invocation",
    "tool-invocation",
    "audit",
    "operator",
    "gateway",
    "integrator",
)
SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_VALIDITY = datetime.timedelta(days=825)


@dataclass(frozen=True)
class SecurityMaterial:
    directory: Path

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key_file(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def broker_keystore(self) -> Path:
        return self.directory / "broker.pem"

    def password_file(self, user: str) -> Path:
        return self.directory / "users" / f"{user}.password"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    @property
    def complete(self) -> bool:
        files = [self.ca_file, self.broker_keystore, *map(self.password_file, USERS)]
        return all(path.exists() for path in files)


def security_material(settings: InfraSettings) -> SecurityMaterial:
    return SecurityMaterial(settings.kafka_dir / "security")


def create_material(settings: InfraSettings) -> SecurityMaterial:
    """CA, broker certificate and user passwords; files that exist are kept."""
    material = security_material(settings)
    (material.directory / "users").mkdir(parents=True, exist_ok=True)
    if not material.ca_file.exists():
        ca_key = ec.generate_private_key(ec.SECP256R1())
        _write_private(material.ca_key_file, _pem_key(ca_key))
        material.ca_file.write_bytes(
            _ca_certificate(ca_key).public_bytes(serialization.Encoding.PEM)
        )
    if not material.broker_keystore.exists():
        _write_private(material.broker_keystore, _broker_keystore(material, settings.host))
    for user in USERS:
        if not material.password_file(user).exists():
            _write_private(material.password_file(user), (secrets.token_hex(16) + "\n").encode())
    return material


def scram_format_arguments(material: SecurityMaterial) -> list[str]:
    """`kafka-storage format` arguments that create every user with both SCRAM mechanisms."""
    arguments: list[str] = []
    for user in USERS:
        password = material.password(user)
        for mechanism in SCRAM_MECHANISMS:
            arguments += ["--add-scram", f"{mechanism}=[name={user},password={password}]"]
    return arguments


def sasl_ssl_properties(material: SecurityMaterial, listener: str) -> dict[str, str]:
    """server.properties entries of the SASL_SSL listener named `listener`."""
    prefix = f"listener.name.{listener.lower()}"
    plain_users = " ".join(f'user_{u}="{material.password(u)}"' for u in USERS)
    properties = {
        f"{prefix}.ssl.keystore.type": "PEM",
        f"{prefix}.ssl.keystore.location": str(material.broker_keystore),
        f"{prefix}.sasl.enabled.mechanisms": ",".join(("PLAIN", *SCRAM_MECHANISMS)),
        f"{prefix}.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
    }
    for mechanism in SCRAM_MECHANISMS:
        properties[f"{prefix}.{mechanism.lower()}.sasl.jaas.config"] = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        )
    return properties


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "agent-runtime local CA")])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _broker_keystore(material: SecurityMaterial, host: str) -> bytes:
    ca_key = serialization.load_pem_private_key(material.ca_key_file.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise RuntimeError(f"{material.ca_key_file} is not the EC key this script writes")
    ca = x509.load_pem_x509_certificate(material.ca_file.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    # Hostname verification stays on in the clients: the certificate names what they dial.
    names: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address(host)),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kafka-local")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Kafka's PEM keystore: an unencrypted PKCS#8 key followed by the certificate chain.
    return _pem_key(key) + certificate.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, content: bytes) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_bytes(content)
