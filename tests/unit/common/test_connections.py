"""Client options from the shared settings: nothing for the local services, the login and
TLS for a secured cluster, secrets read from files and never shown."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from pydantic import ValidationError
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from common.connections import (
    HiredisPackedConnection,
    aiokafka_options,
    kafka_options,
    redis_options,
)
from common.settings import RedisSettings, StackSettings


def test_the_local_services_need_no_option() -> None:
    s = StackSettings()
    assert kafka_options(s) == {} and aiokafka_options(s) == {}
    assert redis_options(RedisSettings()) == {}


def test_sasl_ssl_gives_the_login_and_the_ca_to_both_kafka_clients(tmp_path: Path) -> None:
    secret = tmp_path / "worker.password"
    secret.write_text("s3cret-from-a-file\n")  # the trailing newline is not the password
    s = StackSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_username="worker",
        kafka_password_file=secret,
    )
    assert kafka_options(s) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "worker",
        "sasl_plain_password": "s3cret-from-a-file",
        "ssl_check_hostname": True,
    }
    asyncio_options = aiokafka_options(s)
    assert asyncio_options["sasl_plain_password"] == "s3cret-from-a-file"
    assert isinstance(asyncio_options["ssl_context"], ssl.SSLContext)
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())


def test_sasl_without_tls_has_no_tls_option() -> None:
    s = StackSettings(kafka_security_protocol="SASL_PLAINTEXT", kafka_username="u")
    assert "ssl_context" not in aiokafka_options(s) and "ssl_check_hostname" not in kafka_options(s)


def test_redis_gets_user_password_and_ca_only_over_tls(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    tls = RedisSettings(
        redis_url="rediss://127.0.0.1:26390/0",
        redis_username="reader",
        redis_password="pw",
        redis_ca_file=ca,
    )
    assert redis_options(tls) == {"username": "reader", "password": "pw", "ssl_ca_certs": str(ca)}
    plain = tls.model_copy(update={"redis_url": "redis://127.0.0.1:26379/0"})
    assert "ssl_ca_certs" not in redis_options(plain)


@pytest.mark.parametrize("content", [None, ""])
def test_an_unreadable_or_empty_secret_file_names_its_variable(
    tmp_path: Path, content: str | None
) -> None:
    path = tmp_path / "missing.password"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValidationError, match="DOSSIER_KAFKA_PASSWORD_FILE"):
        StackSettings(kafka_password_file=path)


@pytest.mark.parametrize(
    "args",
    [
        ("HSET", "ds:v1:scope:agency:SO-XD", "overdue_now", "4", "qtd.online_ratio", "0.7"),
        ("ZADD", "ds:v1:rank:online_ratio:city", 0.7, "SO-XD", 1 / 3, "SO-TC", -0.0, "x"),
        ("HSET", "k", "name", "Sở Xây dựng", "n", 12, "big", 10**30, "f", 1e20),
        ("CONFIG GET", "maxmemory"),  # a command of two words, split as redis-py does
        (b"OBJECT ENCODING", b"k\x00\xff"),
    ],
)
def test_hiredis_packs_the_bytes_redis_py_packs(args: tuple[object, ...]) -> None:
    ours = b"".join(HiredisPackedConnection().pack_command(*args))
    assert ours == b"".join(Connection().pack_command(*args))


def test_what_hiredis_cannot_pack_is_left_to_redis_py() -> None:
    view = memoryview(b"value")
    packed = HiredisPackedConnection().pack_command("SET", "k", view)
    assert b"".join(bytes(c) for c in packed) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"
    with pytest.raises(DataError, match="bool"):
        HiredisPackedConnection().pack_command("SET", "k", True)
