"""Secrets and certificates: generated once, kept, private, and usable for TLS."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509

from dossier_stream.credentials import (
    CredentialsError,
    Material,
    certificate_names,
    ensure_material,
)
from schemas.signing import signer_key

PRINCIPALS = ["admin", "worker", "gateway", "agency.SO-XD"]
USERS = ["admin", "worker", "reader"]
SIGNERS = ["gateway", "SO-XD"]


def generate(root: Path, hosts: tuple[str, ...] = ()) -> tuple[Material, list[Path]]:
    return ensure_material(
        root, kafka_principals=PRINCIPALS, redis_users=USERS, signers=SIGNERS, hosts=hosts
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Material, list[Path]]:
    return generate(tmp_path_factory.mktemp("secrets"), ("kafka", "redis"))


def test_every_file_is_private(generated: tuple[Material, list[Path]]) -> None:
    material, created = generated
    files = sorted(p for p in material.root.rglob("*") if p.is_file())
    assert files == sorted(created)
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    dirs = [material.root, *(p for p in material.root.rglob("*") if p.is_dir())]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o700 for p in dirs)


def test_a_second_run_generates_nothing_and_changes_nothing(tmp_path: Path) -> None:
    _, created = generate(tmp_path)
    before = {p: p.read_bytes() for p in created}
    _, created_again = generate(tmp_path)
    assert created_again == []
    assert {p: p.read_bytes() for p in before} == before


def test_a_new_principal_gets_a_password_and_the_rest_is_kept(tmp_path: Path) -> None:
    material, _ = generate(tmp_path)
    old = material.read(material.kafka_password_file("worker"))
    _, created = ensure_material(
        tmp_path,
        kafka_principals=[*PRINCIPALS, "agency.SO-TC"],
        redis_users=USERS,
        signers=[*SIGNERS, "SO-TC"],
    )
    assert sorted(p.name for p in created) == ["SO-TC.key", "agency.SO-TC.password"]
    assert material.read(material.kafka_password_file("worker")) == old


def test_passwords_differ_and_are_long(generated: tuple[Material, list[Path]]) -> None:
    material, _ = generated
    passwords = [material.read(material.kafka_password_file(p)) for p in PRINCIPALS] + [
        material.read(material.redis_password_file(u)) for u in USERS
    ]
    assert len(set(passwords)) == len(passwords)
    assert min(len(p) for p in passwords) >= 40


def test_signer_keys_are_derived_from_the_master_key(
    generated: tuple[Material, list[Path]],
) -> None:
    material, _ = generated
    master = material.read(material.master_key_file)
    for signer in SIGNERS:
        assert material.read(material.signer_key_file(signer)) == signer_key(master, signer)


@pytest.mark.parametrize("server", ["kafka", "redis"])
def test_server_certificates_name_the_hosts_and_chain_to_the_ca(
    generated: tuple[Material, list[Path]], server: str
) -> None:
    material, _ = generated
    assert certificate_names(material.server_cert(server)) == {
        "127.0.0.1",
        "localhost",
        "kafka",
        "redis",
    }
    cert = x509.load_pem_x509_certificate(material.server_cert(server).read_bytes())
    ca = x509.load_pem_x509_certificate(material.ca_cert.read_bytes())
    cert.verify_directly_issued_by(ca)
    # What a client does: trust the CA, load the server's key and chain.
    ssl.create_default_context(cafile=str(material.ca_cert))
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(material.server_cert(server), material.server_key(server))


def test_the_kafka_keystore_holds_key_certificate_and_ca(
    generated: tuple[Material, list[Path]],
) -> None:
    material, _ = generated
    text = material.kafka_keystore.read_text()
    assert text.count("BEGIN PRIVATE KEY") == 1
    assert text.count("BEGIN CERTIFICATE") == 2


def test_a_ca_certificate_without_its_key_is_an_error(tmp_path: Path) -> None:
    material, _ = generate(tmp_path)
    material.ca_key.unlink()
    with pytest.raises(CredentialsError, match=r"ca\.key is missing"):
        generate(tmp_path)
