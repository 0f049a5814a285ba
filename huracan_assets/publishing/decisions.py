"""The decision log: ``decisions/D.jsonl`` in the store and the registry's ``decisions`` table.

One JSON line per decision of D: each coin the champion step decided (``promotion``, ``refusal``, ``kill``,
``publish_failed``), a global stop (``global_kill``) and an operator's rollback (``rollback``), with its reason,
models, retest number and document (the gate values and shadow statistics it was decided on). A rerun of D
replaces the graph's lines (``source: graph``) and keeps the operator's (``source: operator``), in the store and in
the registry alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from huracan_assets.storage.object_store import ObjectNotFound, ObjectStore


def decisions_key(day: date) -> str:
    return f"decisions/{day.isoformat()}.jsonl"


def read_decisions(store: ObjectStore, day: date) -> list[dict[str, Any]]:
    """The decision lines of ``day`` (lines that do not parse are left out)."""
    try:
        text = store.get(decisions_key(day)).decode()
    except ObjectNotFound:
        return []
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def _put(store: ObjectStore, day: date, records: Sequence[Mapping[str, Any]]) -> None:
    body = "".join(json.dumps(r, sort_keys=True, default=str) + "\n" for r in records)
    store.put(decisions_key(day), body.encode(), content_type="application/x-ndjson")


def _row(record: Mapping[str, Any], timeframe: str, at: datetime) -> dict[str, Any]:
    return {
        "date": date.fromisoformat(record["date"]),
        "symbol": record["symbol"],
        "timeframe": timeframe,
        "kind": record["kind"],
        "event_id": record.get("event_id", ""),
        "source": record["source"],
        "reason": record["reason"],
        "model_id": record.get("model_id"),
        "champion_model_id": record.get("champion_model_id"),
        "document": record.get("document"),
        "at": at,
    }


def write_decisions(
    store: ObjectStore, registry, timeframe: str, day: date, records: Sequence[Mapping[str, Any]]
) -> None:
    """The graph's decisions of ``day`` (``core/promotion/pointer.decision_records``), replacing its earlier ones."""
    now = datetime.now(UTC)
    graph = [{**r, "source": "graph", "event_id": ""} for r in records]
    kept = [r for r in read_decisions(store, day) if r.get("source") == "operator"]
    _put(store, day, [*graph, *kept])
    registry.replace_partitions(
        "decisions",
        [{"date": day, "timeframe": timeframe, "source": "graph"}],
        [_row(r, timeframe, now) for r in graph],
    )


def log_operator_decision(store: ObjectStore, registry, timeframe: str, record: Mapping[str, Any]) -> None:
    """An operator's decision (a rollback) of ``record["date"]``, once per ``record["event_id"]`` (a rerun adds
    nothing)."""
    day = date.fromisoformat(record["date"])
    record = {**record, "source": "operator"}
    existing = read_decisions(store, day)
    if not any(r.get("event_id") == record["event_id"] and r.get("source") == "operator" for r in existing):
        _put(store, day, [*existing, record])
    registry.upsert("decisions", [_row(record, timeframe, datetime.now(UTC))])
