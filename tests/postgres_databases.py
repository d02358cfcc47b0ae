"""Throw-away PostgreSQL databases for the store tests (a helper module, importable from any test).

``.ci/run`` starts a PostgreSQL server on loopback and sets ``NIGHTDESK_TEST_POSTGRES_URL``
to a role that may create databases; without it the PostgreSQL variants are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_ENV = "NIGHTDESK_TEST_POSTGRES_URL"


def fresh_postgres_database(prefix: str = "nightdesk_test") -> Iterator[str]:
    """A new, empty database on the server of NIGHTDESK_TEST_POSTGRES_URL, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set (.ci/run starts a PostgreSQL server and sets it)")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
