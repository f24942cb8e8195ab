"""Clients kept per connection: reused while nothing changes, rebuilt when the connection or one of
its secrets changes, or after the provider refused the credentials."""

from __future__ import annotations

from pathlib import Path

from core.models import Connection
from providers.client_cache import ConnectionClients
from providers.credentials import Secrets


def _connection(secret_file: Path, **config: object) -> Connection:
    return Connection(
        id=7,
        name="contoso",
        provider="m365",
        tenant="contoso.example",
        config={"client_id": "app", **config},
        secret_refs={"client_secret": f"file:{secret_file}"},
    )


def _get(cache: ConnectionClients, connection: Connection) -> object:
    secrets = Secrets(connection.secret_refs)
    return cache.get(connection, secrets, "tokens", object)


def test_a_client_is_built_once_per_connection(tmp_path: Path) -> None:
    # given a connection whose client was built
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    cache = ConnectionClients()
    first = _get(cache, _connection(secret))
    # when another run asks for it with nothing changed
    again = _get(cache, _connection(secret))
    # then it is the same client, built once
    assert again is first
    assert cache.builds == 1


def test_an_edited_connection_or_a_rotated_secret_gets_a_new_client(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    cache = ConnectionClients()
    first = _get(cache, _connection(secret))
    # when the connection's config changes, a new client is built
    edited = _get(cache, _connection(secret, graph_base_url="https://graph.example/v1.0"))
    assert edited is not first
    # and when the secret behind the same reference is rotated, another one
    secret.write_text("rotated")
    rotated = _get(cache, _connection(secret, graph_base_url="https://graph.example/v1.0"))
    assert rotated is not edited
    assert cache.builds == 3


def test_a_forgotten_connection_builds_again(tmp_path: Path) -> None:
    # given a client the provider then refused the credentials of
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    cache = ConnectionClients()
    connection = _connection(secret)
    first = _get(cache, connection)
    cache.forget(connection)
    # then the next run builds a new one
    assert _get(cache, connection) is not first


def test_the_least_recently_used_connection_is_dropped_first(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    cache = ConnectionClients(max_connections=1)
    one = _connection(secret)
    other = _connection(secret)
    other.id, other.name = 8, "fabrikam"
    first = _get(cache, one)
    _get(cache, other)
    assert _get(cache, one) is not first
