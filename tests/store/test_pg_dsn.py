"""The [postgres] dsn forms: URI and libpq keywords, never echoed with its password."""

from __future__ import annotations

import pytest

from fleetpulse.cli.main import main
from fleetpulse.config import PostgresSettings
from fleetpulse.errors import StoreError
from fleetpulse.store._pg_connect import connect, connect_options, describe_dsn, uri_from_dsn
from tests.postgres_server import HOST, SUPERUSER, PostgresServer

PASSWORD = "Hunter2"


@pytest.mark.parametrize(
    ("dsn", "described"),
    [
        (f"host=10.0.0.5 port=5433 password={PASSWORD} dbname=fleet", "10.0.0.5:5433/fleet"),
        (f"host=db password='{PASSWORD} x' dbname=fleet", "db:5432/fleet"),
        (f"postgresql://fp:{PASSWORD}@db:5433/fleet", "db:5433/fleet"),
        (f"user=fp password={PASSWORD} no-equals-sign", "(invalid postgres dsn)"),
    ],
)
def test_describe_dsn_hides_password(dsn: str, described: str) -> None:
    assert describe_dsn(dsn) == described


def test_uri_ipv6_hosts_accepted() -> None:
    dsn = f"postgresql://fp:{PASSWORD}@[2001:db8::ffff]:5432,[::1]/fleet"

    assert uri_from_dsn(dsn) == dsn


def test_keyword_dsn_quoted_values() -> None:
    uri = uri_from_dsn(r"host=db user=fp password='it\'s a secret' dbname=fleet")

    assert uri == "postgresql://?host=db&user=fp&password=it%27s%20a%20secret&dbname=fleet"


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://fp:{PASSWORD}@127.0.0.1:99999/fleet",
        f"postgresql://fp:{PASSWORD}@127.0.0.1/fleet?port=70000",
        f"postgresql://fp:{PASSWORD}@h1:5432,h2:99999/fleet",
        f"host=127.0.0.1 port=99999 password={PASSWORD}",
        f"host=127.0.0.1 port=abc password={PASSWORD}",
    ],
)
def test_port_out_of_range_rejected(dsn: str) -> None:
    with pytest.raises(StoreError) as caught:
        connect_options(PostgresSettings(dsn=dsn))

    message = str(caught.value)
    assert "from 1 to 65535" in message
    assert PASSWORD not in message


@pytest.mark.parametrize(
    "dsn",
    [
        f"host=db password={PASSWORD} connect_timeout=3",
        f"password='{PASSWORD}",
        f"{PASSWORD}",
    ],
)
def test_unusable_keyword_dsn_rejected(dsn: str) -> None:
    with pytest.raises(StoreError) as caught:
        connect_options(PostgresSettings(dsn=dsn))

    message = str(caught.value)
    assert "postgresql://USER:PASSWORD@HOST:5432/DATABASE" in message
    assert PASSWORD not in message


async def test_keyword_dsn_connects(postgres_server: PostgresServer) -> None:
    dsn = f"host={HOST} port={postgres_server.port} user={SUPERUSER} dbname=postgres"

    connection = await connect(PostgresSettings(dsn=dsn), "test connect")
    try:
        assert await connection.fetchval("SELECT current_database()") == "postgres"
    finally:
        await connection.close()


def test_db_status_keyword_dsn_hides_password(
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The test server trusts loopback connections, so the password is sent but not checked.
    dsn = (
        f"host={HOST} port={postgres_server.port} user={SUPERUSER} "
        f"password={PASSWORD} dbname=postgres"
    )
    monkeypatch.setenv("FLEETPULSE_POSTGRES_DSN", dsn)
    monkeypatch.setenv("FLEETPULSE_STORE_BACKEND", "postgres")

    exit_code = main(["db", "status"])

    captured = capsys.readouterr()
    assert exit_code in (0, 3), captured.err
    assert "is invalid" not in captured.err
    assert PASSWORD not in captured.out + captured.err


def test_db_status_bad_port_hides_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = f"host=127.0.0.1 port=99999 user=fp password={PASSWORD} dbname=fleet"
    monkeypatch.setenv("FLEETPULSE_POSTGRES_DSN", dsn)
    monkeypatch.setenv("FLEETPULSE_STORE_BACKEND", "postgres")

    exit_code = main(["db", "status"])

    captured = capsys.readouterr()
    assert exit_code == 1
    assert "port '99999'" in captured.err
    assert PASSWORD not in captured.out + captured.err
