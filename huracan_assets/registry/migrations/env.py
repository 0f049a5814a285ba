"""Alembic environment: runs on the connection handed over by ``huracan_assets.registry.migrate``."""

from alembic import context
from sqlalchemy import create_engine

from huracan_assets.registry.tables import VERSION_TABLE, metadata

config = context.config


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # our own version table: the registry may share a database with Dagster's storage,
        # which keeps its own `alembic_version`
        version_table=VERSION_TABLE,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # `alembic -x url=...` from the command line
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option("sqlalchemy.url")
    with create_engine(url).connect() as conn:
        _run(conn)
        conn.commit()
