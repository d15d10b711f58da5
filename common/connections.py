"""Client options for Kafka and Redis from `StackSettings`: addresses, TLS, credentials.

Every process builds its Kafka and Redis clients through these functions, so that one
set of DOSSIER_* variables (docs/security.md) secures all of them. With the defaults
(the local, unsecured services) they add nothing.
"""

from __future__ import annotations

import ssl
from typing import Any

import hiredis
import redis
import redis.asyncio as aioredis
from redis.asyncio.connection import Connection, SSLConnection

from common.settings import RedisSettings, StackSettings


def _settings(settings: StackSettings | None) -> StackSettings:
    return StackSettings() if settings is None else settings


def _password(settings: StackSettings) -> str | None:
    return settings.kafka_password.get_secret_value() if settings.kafka_password else None


def _sasl(s: StackSettings) -> dict[str, Any]:
    """The protocol, and the SASL login when the protocol has one (same names in both clients)."""
    options: dict[str, Any] = {"security_protocol": s.kafka_security_protocol}
    if s.kafka_security_protocol.startswith("SASL"):
        options |= {
            "sasl_mechanism": s.kafka_sasl_mechanism,
            "sasl_plain_username": s.kafka_username,
            "sasl_plain_password": _password(s),
        }
    return options


def kafka_options(settings: StackSettings | None = None) -> dict[str, Any]:
    """Security options for a kafka-python client (KafkaProducer, KafkaConsumer, admin)."""
    s = _settings(settings)
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options = _sasl(s)
    if protocol.endswith("SSL"):
        options |= {"ssl_check_hostname": True}
        if s.kafka_ca_file is not None:
            options["ssl_cafile"] = str(s.kafka_ca_file)
    return options


def kafka_ssl_context(settings: StackSettings | None = None) -> ssl.SSLContext | None:
    """The TLS context of an asyncio client (aiokafka, Faust), or None without TLS."""
    s = _settings(settings)
    if not s.kafka_security_protocol.endswith("SSL"):
        return None
    cafile = str(s.kafka_ca_file) if s.kafka_ca_file is not None else None
    return ssl.create_default_context(cafile=cafile)


def aiokafka_options(settings: StackSettings | None = None) -> dict[str, Any]:
    """Security options for an aiokafka client (AIOKafkaConsumer, AIOKafkaProducer)."""
    s = _settings(settings)
    protocol = s.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return {}
    options = _sasl(s)
    context = kafka_ssl_context(s)
    if context is not None:
        options["ssl_context"] = context
    return options


def redis_options(settings: RedisSettings | None = None) -> dict[str, Any]:
    """Credentials and TLS options for a redis-py client of `settings.redis_url`."""
    s = RedisSettings() if settings is None else settings
    options: dict[str, Any] = {}
    if s.redis_username:
        options["username"] = s.redis_username
    if s.redis_password is not None:
        options["password"] = s.redis_password.get_secret_value()
    if s.redis_ca_file is not None and s.redis_url.startswith("rediss://"):
        options["ssl_ca_certs"] = str(s.redis_ca_file)
    return options


def redis_client(
    settings: RedisSettings | None = None, *, url: str | None = None, **kwargs: Any
) -> redis.Redis:
    """A synchronous Redis client of `url` (default `settings.redis_url`), authenticated."""
    s = RedisSettings() if settings is None else settings
    return redis.Redis.from_url(url or s.redis_url, **(redis_options(s) | kwargs))


def async_redis_client(
    settings: RedisSettings | None = None, *, url: str | None = None, **kwargs: Any
) -> aioredis.Redis:
    """An asyncio Redis client of `url` (default `settings.redis_url`), authenticated,
    packing its commands with hiredis."""
    s = RedisSettings() if settings is None else settings
    url = url or s.redis_url
    packing: dict[str, Any] = {}
    if url.startswith("redis://"):
        packing["connection_class"] = HiredisPackedConnection
    elif url.startswith("rediss://"):
        packing["connection_class"] = HiredisPackedSSLConnection
    return aioredis.Redis.from_url(url, **(redis_options(s) | packing | kwargs))


def pack_with_hiredis(args: tuple[Any, ...]) -> list[bytes] | None:
    """A command in the Redis protocol, packed by hiredis (C): the bytes redis-py's own
    packing gives, about 12 times faster (redis-py packs with hiredis only in its
    synchronous client; a Redis writer's flush packs thousands of fields). None when an
    argument is not str, bytes, int or float: redis-py packs it, or says what is wrong."""
    first = args[0]
    if isinstance(first, str):
        args = (*first.encode().split(), *args[1:])
    elif b" " in first:
        args = (*first.split(), *args[1:])
    try:
        return [hiredis.pack_command(args)]
    except TypeError:
        return None


class _HiredisPacking:
    """Packs with hiredis; what it cannot pack, the redis-py connection class after it does."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return pack_with_hiredis(args) or super().pack_command(*args)  # type: ignore[misc]


class HiredisPackedConnection(_HiredisPacking, Connection):
    pass


class HiredisPackedSSLConnection(_HiredisPacking, SSLConnection):
    pass
