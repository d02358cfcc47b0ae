"""Alembic environment of the store: run by ``store.migrate`` on a connection it hands over
(``config.attributes["connection"]``), or by the ``alembic`` command with ``-x url=...``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from store.tables import Base

config = context.config


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                      compare_type=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two processes opening the store at once must not both create the tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(4242001)"))
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    engine = create_engine(url)
    with engine.connect() as own_connection:
        _run(own_connection)
    engine.dispose()
