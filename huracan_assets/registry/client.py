"""Registry access: migrations, idempotent upserts and partition-replacing writes.

Works on PostgreSQL (production and tests) and SQLite (the embedded default). Writes are
idempotent: an upsert by primary key, or a delete-then-insert of one partition in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, create_engine, event, inspect, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import OperationalError

from huracan_assets.registry.tables import TABLES, VERSION_TABLE, symbol_status

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


class RegistryError(RuntimeError):
    pass


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we ship psycopg2
        url = "postgresql+psycopg2://" + url[len("postgresql://") :]
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)


def sqlite_url(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class Registry:
    def __init__(self, url: str, *, migrate: bool = True, connect_attempts: int = 3) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._connect_attempts = connect_attempts
        if migrate:
            self.migrate()

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def _alembic_config(self):
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        return cfg

    def migrate(self, revision: str = "head") -> None:
        from alembic import command

        cfg = self._alembic_config()
        for attempt in range(1, self._connect_attempts + 1):
            try:
                with self.engine.begin() as conn:
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, revision)
                return
            except OperationalError as exc:
                if attempt == self._connect_attempts:
                    raise RegistryError(f"registry {self.describe()} unreachable: {exc.orig}") from exc
                time.sleep(0.5 * attempt)

    def downgrade(self, revision: str = "base") -> None:
        from alembic import command

        cfg = self._alembic_config()
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as conn:
            return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()

    def table_names(self) -> list[str]:
        return sorted(inspect(self.engine).get_table_names())

    # -- writes ---------------------------------------------------------------------------------
    def _insert(self, table):
        return postgresql.insert(table) if self.dialect == "postgresql" else sqlite.insert(table)

    def upsert(self, table_name: str, rows: Sequence[Mapping[str, Any]]) -> int:
        """Insert or update by primary key. Running it twice leaves one row per key."""
        if not rows:
            return 0
        table = _table(table_name)
        pk = [c.name for c in table.primary_key.columns]
        stmt = self._insert(table)
        updatable = [c.name for c in table.columns if c.name not in pk]
        stmt = (
            stmt.on_conflict_do_update(index_elements=pk, set_={name: stmt.excluded[name] for name in updatable})
            if updatable
            else stmt.on_conflict_do_nothing(index_elements=pk)
        )
        with self.engine.begin() as conn:
            conn.execute(stmt, [dict(r) for r in rows])
        return len(rows)

    def replace_partitions(
        self, table_name: str, partitions: Iterable[Mapping[str, Any]], rows: Sequence[Mapping[str, Any]]
    ) -> int:
        """Delete the rows of the given partitions, then insert ``rows``, in one transaction.

        A partition is a mapping of column -> value (e.g. ``{"symbol": "BTCUSDT", "as_of": d}``).
        """
        table = _table(table_name)
        conditions = [and_(*(table.c[k] == v for k, v in part.items())) for part in partitions]
        with self.engine.begin() as conn:
            if conditions:
                conn.execute(table.delete().where(or_(*conditions)))
            if rows:
                conn.execute(table.insert(), [dict(r) for r in rows])
        return len(rows)

    def select(self, table_name: str, **where: Any) -> list[dict[str, Any]]:
        """The rows matching ``where`` (a value, or a list of values), in primary-key order: without an ORDER BY,
        PostgreSQL returns them in heap order, which an upsert (a new row version) or a vacuum changes, and what
        is computed from them (float sums, ties in a sort) would differ between two runs that stored the same."""
        table = _table(table_name)
        stmt = select(table).order_by(*(table.primary_key.columns or table.columns))
        for column, value in where.items():
            if isinstance(value, list | tuple | set):
                stmt = stmt.where(table.c[column].in_(list(value)))
            else:
                stmt = stmt.where(table.c[column] == value)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(stmt)]

    def record_symbol_status(
        self,
        asset: str,
        timeframe: str,
        statuses: Mapping[tuple[str, date], tuple[str, str | None]],
        run_id: str | None,
        details: Mapping[tuple[str, date], dict] | None = None,
    ) -> int:
        now = datetime.now(UTC)
        details = details or {}
        rows = [
            {
                "asset": asset,
                "symbol": symbol,
                "as_of": as_of,
                "timeframe": timeframe,
                "status": status,
                "reason": reason,
                "detail": details.get((symbol, as_of)),
                "run_id": run_id,
                "updated_at": now,
            }
            for (symbol, as_of), (status, reason) in statuses.items()
        ]
        return self.upsert(symbol_status.name, rows)

    def dispose(self) -> None:
        self.engine.dispose()


def _table(name: str):
    try:
        return TABLES[name]
    except KeyError:
        raise RegistryError(f"unknown registry table {name!r}; known: {sorted(TABLES)}") from None
