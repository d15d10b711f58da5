"""Secrets and certificates of a secured deployment, generated once into one directory.

Layout (every file mode 0600, every directory 0700):

    tls/ca.crt, tls/ca.key            the CA that signs the servers' certificates
    tls/<server>.crt, tls/<server>.key  kafka and redis, SAN 127.0.0.1, localhost, --host
    tls/kafka.keystore.pem            kafka.key + kafka.crt + ca.crt (Kafka's PEM keystore)
    kafka/<principal>.password        SCRAM-SHA-512 password of each Kafka principal
    redis/<user>.password             password of each Redis ACL user
    signing/master.key                the event-signing master key (the worker's)
    signing/<signer>.key              each signer's key, derived from it (schemas/signing.py)

Nothing that exists is generated again: restarting keeps every password and certificate.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from schemas.signing import signer_key

log = logging.getLogger(__name__)

SERVERS = ("kafka", "redis")
LOCAL_NAMES = ("localhost", "127.0.0.1")
_CA_DAYS = 3650
_SERVER_DAYS = 825


class CredentialsError(RuntimeError):
    """Secret material is missing, unreadable or inconsistent."""


@dataclass(frozen=True)
class Material:
    """Paths of the secret material under `root`, and reading it back."""

    root: Path

    @property
    def ca_cert(self) -> Path:
        return self.root / "tls" / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.root / "tls" / "ca.key"

    def server_cert(self, server: str) -> Path:
        return self.root / "tls" / f"{server}.crt"

    def server_key(self, server: str) -> Path:
        return self.root / "tls" / f"{server}.key"

    @property
    def kafka_keystore(self) -> Path:
        return self.root / "tls" / "kafka.keystore.pem"

    def kafka_password_file(self, principal: str) -> Path:
        return self.root / "kafka" / f"{principal}.password"

    def redis_password_file(self, user: str) -> Path:
        return self.root / "redis" / f"{user}.password"

    @property
    def master_key_file(self) -> Path:
        return self.root / "signing" / "master.key"

    def signer_key_file(self, signer: str) -> Path:
        return self.root / "signing" / f"{signer}.key"

    @staticmethod
    def read(path: Path) -> str:
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise CredentialsError(f"cannot read {path}: {exc.strerror}") from None
        if not text:
            raise CredentialsError(f"{path} is empty")
        return text


def ensure_material(
    root: Path,
    *,
    kafka_principals: Sequence[str],
    redis_users: Sequence[str],
    signers: Sequence[str],
    hosts: Iterable[str] = (),
) -> tuple[Material, list[Path]]:
    """Generate what is missing under `root`; return the material and the files created."""
    material = Material(root)
    created: list[Path] = []
    for sub in ("", "tls", "kafka", "redis", "signing"):
        _private_dir(root / sub)
    names = list(dict.fromkeys([*LOCAL_NAMES, *hosts]))

    if not material.ca_cert.exists() or not material.ca_key.exists():
        if material.ca_cert.exists() or material.ca_key.exists():
            there, gone = (
                (material.ca_cert, material.ca_key)
                if material.ca_cert.exists()
                else (material.ca_key, material.ca_cert)
            )
            raise CredentialsError(
                f"{gone} is missing but {there} exists; remove it and every server "
                "certificate to make a new CA"
            )
        key, cert = _make_ca()
        created += [_write(material.ca_key, _key_pem(key)), _write(material.ca_cert, _pem(cert))]
    ca_key = serialization.load_pem_private_key(material.ca_key.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(material.ca_cert.read_bytes())
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise CredentialsError(f"{material.ca_key} is not an RSA key")
    for server in SERVERS:
        cert_path, key_path = material.server_cert(server), material.server_key(server)
        if cert_path.exists() and key_path.exists():
            _warn_missing_names(cert_path, names)
            continue
        key, cert = _make_server(server, names, ca_key, ca_cert)
        created += [_write(key_path, _key_pem(key)), _write(cert_path, _pem(cert))]
    if not material.kafka_keystore.exists():
        chain = (
            material.server_key("kafka").read_bytes()
            + material.server_cert("kafka").read_bytes()
            + material.ca_cert.read_bytes()
        )
        created.append(_write(material.kafka_keystore, chain))

    for principal in kafka_principals:
        created += _ensure_password(material.kafka_password_file(principal))
    for user in redis_users:
        created += _ensure_password(material.redis_password_file(user))
    if not material.master_key_file.exists():
        created.append(_write(material.master_key_file, secrets.token_hex(32).encode()))
    master = material.read(material.master_key_file)
    for signer in signers:
        path = material.signer_key_file(signer)
        if not path.exists():
            created.append(_write(path, signer_key(master, signer).encode()))
    for path in created:
        log.debug("generated %s", path)
    return material, created


def _ensure_password(path: Path) -> list[Path]:
    if path.exists():
        return []
    return [_write(path, secrets.token_urlsafe(32).encode())]


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _write(path: Path, content: bytes) -> Path:
    """Write a new file of mode 0600 atomically; never replace one that exists."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.link(tmp, path)  # fails if another process wrote it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _make_ca() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dossier-stream local CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
    return key, cert


def _make_server(
    server: str, names: Sequence[str], ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate
) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_SERVER_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _general_names(names: Sequence[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def certificate_names(path: Path) -> set[str]:
    """The DNS names and IP addresses a certificate's SAN lists."""
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return set(san.get_values_for_type(x509.DNSName)) | ips


def _warn_missing_names(path: Path, names: Sequence[str]) -> None:
    missing = sorted(set(names) - certificate_names(path))
    if missing:
        log.warning(
            "%s does not name %s; it is kept (delete it and its key to make a new one)",
            path,
            ", ".join(missing),
        )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    # PKCS#8 without a passphrase: what Kafka's PEM keystore and Redis both read.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
