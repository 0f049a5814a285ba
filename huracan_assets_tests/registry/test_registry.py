"""Registry on both databases: migrations match the table metadata, writes are idempotent."""

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from huracan_assets.registry.client import Registry, RegistryError, sqlite_url
from huracan_assets.registry.tables import metadata

ALL = [
    "daily_equity",
    "decisions",
    "model_metrics",
    "models",
    "param_decisions",
    "param_evidence",
    "param_state",
    "posteriors",
    "presets",
    "promotions",
    "shadow_trades",
    "symbol_status",
]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.integration)])
def registry(request, tmp_path):
    url = sqlite_url(tmp_path / "r.db") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    reg = Registry(url)
    yield reg
    reg.dispose()


def test_migrated_schema_matches_the_table_metadata(registry):
    assert registry.current_revision() == "0008"
    assert [t for t in registry.table_names() if t != "huracan_registry_version"] == ALL
    with registry.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "version_table": "huracan_registry_version"})
        diff = compare_metadata(ctx, metadata)
    assert diff == []


def test_step_by_step_migration_keeps_rows(registry):
    """0001 -> 0002 adds symbol_status.detail and keeps the rows already there."""
    registry.downgrade("0001")
    assert "detail" not in {c["name"] for c in sa.inspect(registry.engine).get_columns("symbol_status")}
    with registry.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into symbol_status (asset, symbol, as_of, timeframe, status, run_id, updated_at) "
                "values ('candles', 'BTCUSDT', '2024-03-01', '1h', 'ok', 'r', '2024-03-02 00:00:00+00')"
            )
        )
    registry.migrate()
    rows = registry.select("symbol_status")
    assert [(r["symbol"], r["status"], r["detail"]) for r in rows] == [("BTCUSDT", "ok", None)]


def test_0005_keeps_promotions_and_adds_rollbacks_beside_them(registry):
    """0004 -> 0005: the promotion rows stay (kind promotion); a rollback of the same date is another row, a rerun
    of it is not a third; downgrading drops the rollbacks only."""
    registry.downgrade("0004")
    with registry.engine.begin() as conn:
        conn.execute(
            sa.text(
                "insert into promotions (symbol, timeframe, as_of, to_model_id, reason, at, sha256) values "
                "('BTCUSDT', '1h', '2024-03-01', 'BTCUSDT-a', 'gates', '2024-03-02 02:00:00+00', :sha)"
            ),
            {"sha": "a" * 64},
        )
    registry.migrate()
    [row] = registry.select("promotions")
    assert (row["kind"], row["event_id"], row["to_model_id"]) == ("promotion", "", "BTCUSDT-a")
    rollback = {**row, "kind": "rollback", "event_id": "20240302T120000Z", "to_model_id": "BTCUSDT-old"}
    registry.upsert("promotions", [rollback])
    registry.upsert("promotions", [rollback])
    assert sorted(r["kind"] for r in registry.select("promotions")) == ["promotion", "rollback"]
    registry.downgrade("0004")
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.text("select to_model_id from promotions")).all()
    assert [r[0] for r in rows] == ["BTCUSDT-a"]
    registry.migrate()


def test_downgrade_and_upgrade_again(registry):
    registry.downgrade("base")
    assert registry.table_names() == ["huracan_registry_version"]
    registry.migrate()
    assert registry.current_revision() == "0008"


def _model(**kw):
    row = {
        "model_id": "BTCUSDT-2024-03-01-abc",
        "parent_id": None,
        "kind": "challenger",
        "created_at": datetime(2024, 3, 2, 2, 5, tzinfo=UTC),
        "s3_path": "challengers/BTCUSDT/2024-03-01-abc/",
        "features_used": ["ret_24", "vol_24"],
        "params": {"num_leaves": 31},
        "symbol": "BTCUSDT",
        "sha256": "a" * 64,
        "as_of": date(2024, 3, 1),
        "timeframe": "1h",
    }
    row.update(kw)
    return row


def test_upsert_is_idempotent_and_updates(registry):
    registry.upsert("models", [_model()])
    registry.upsert("models", [_model()])
    registry.upsert("models", [_model(kind="champion", params={"num_leaves": 63})])
    rows = registry.select("models", symbol="BTCUSDT")
    assert len(rows) == 1
    assert rows[0]["kind"] == "champion" and rows[0]["params"] == {"num_leaves": 63}
    assert rows[0]["features_used"] == ["ret_24", "vol_24"]


def test_replace_partitions_is_idempotent_and_scoped(registry):
    def trade(i, sym, day):
        return {
            "trade_id": f"{sym}-{day}-{i}",
            "time": datetime(2024, 3, day, i, tzinfo=UTC),
            "symbol": sym,
            "side": "buy",
            "size": 1.0,
            "entry": 100.0,
            "exit": 101.0,
            "fees": 0.1,
            "net_pnl": 0.9,
            "model_id": "m",
            "sha256": None,
            "as_of": date(2024, 3, day),
            "timeframe": "1h",
        }

    part = [{"symbol": "BTCUSDT", "as_of": date(2024, 3, 1), "timeframe": "1h"}]
    registry.replace_partitions("shadow_trades", [], [trade(9, "ETHUSDT", 1)])
    for _ in range(2):
        registry.replace_partitions("shadow_trades", part, [trade(i, "BTCUSDT", 1) for i in range(3)])
    registry.replace_partitions("shadow_trades", part, [trade(i, "BTCUSDT", 1) for i in range(2)])
    assert len(registry.select("shadow_trades", symbol="BTCUSDT")) == 2
    assert len(registry.select("shadow_trades", symbol="ETHUSDT")) == 1  # other partitions untouched


def test_select_returns_rows_in_primary_key_order_whatever_was_rewritten(registry):
    """A rerun rewrites some keys (a partition replaced, a row upserted anew): the rows read back come in the same
    order as before it, so what is summed or sorted from them (the daily summary) is byte-identical."""

    def status(symbol, state):
        at = datetime(2024, 3, 2, tzinfo=UTC)
        return {"asset": "candles", "symbol": symbol, "as_of": date(2024, 3, 1), "timeframe": "1h", "status": state,
                "reason": None, "detail": None, "run_id": "r", "updated_at": at}  # fmt: skip

    symbols = ["ADAUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"]
    registry.upsert("symbol_status", [status(s, "ok") for s in symbols])
    before = [r["symbol"] for r in registry.select("symbol_status")]
    registry.upsert("symbol_status", [status("ADAUSDT", "failed")])  # a new row version: last in the heap
    registry.replace_partitions("symbol_status", [{"asset": "candles", "symbol": "BTCUSDT"}], [status("BTCUSDT", "ok")])
    after = [r["symbol"] for r in registry.select("symbol_status")]
    assert before == after == symbols


def test_unknown_table_is_a_clear_error(registry):
    with pytest.raises(RegistryError, match="unknown registry table"):
        registry.upsert("live_trades", [{"x": 1}])


@pytest.mark.integration
def test_registry_shares_a_database_with_dagster_storage(pg_url, tmp_path):
    """Dagster's own alembic_version must not collide with the registry's migrations."""
    from huracan_assets_tests.defs.helpers import postgres_instance

    instance = postgres_instance(tmp_path, pg_url)
    instance.get_runs()
    reg = Registry(pg_url)
    assert reg.current_revision() == "0008"
    assert {"alembic_version", "huracan_registry_version", "models", "runs"} <= set(reg.table_names())
    reg.dispose()


@pytest.mark.integration
def test_unreachable_postgres_is_a_clear_error():
    with pytest.raises(RegistryError, match="unreachable"):
        Registry("postgresql+psycopg2://nobody@127.0.0.1:1/none", connect_attempts=1)
