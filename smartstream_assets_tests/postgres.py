"""A real PostgreSQL server for the tests (``smartstream_assets.pg_server``): started once
per session in a temporary folder, on a free port of 127.0.0.1, with a password.

    from .postgres import postgres_server  # noqa: F401  (the fixture)

If the binaries are missing the fixture raises: the database tests fail, they never skip.
"""

import pytest

from smartstream_assets.pg_server import PostgresError, PostgresServer, find_postgres_bin, start_postgres  # noqa: F401


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The session's PostgreSQL server (see the module docstring)."""
    server = start_postgres()
    yield server
    server.stop()
