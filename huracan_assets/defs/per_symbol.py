"""Run a per-(date, symbol) function over all keys of a ranged run; one bad coin never blocks the rest."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from datetime import date

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetExecutionContext, MetadataValue, Output

from huracan_assets.defs.partitions import split_key
from huracan_assets.storage.partitioned import SymbolOutcome

Result = pl.DataFrame | SymbolOutcome


def run_keys(
    context: AssetExecutionContext,
    fn: Callable[[date, str], Result],
    keys: Iterable[str] | None = None,
    label: str = "",
) -> dict[str, Result]:
    """Call ``fn(day, symbol)`` for every key, date by date; exceptions become ``failed`` outcomes."""
    keys = sorted(keys if keys is not None else context.partition_keys, key=lambda k: (split_key(k)[0], str(k)))
    results: dict[str, Result] = {}
    started = time.monotonic()
    step = max(1, len(keys) // 10)
    for i, key in enumerate(keys, 1):
        day, symbol = split_key(key)
        try:
            results[str(key)] = fn(day, symbol)
        except Exception as exc:  # one coin's error is recorded for that coin, never raised for the run
            reason = f"{type(exc).__name__}: {exc}"
            context.log.warning(f"{label or context.asset_key.to_user_string()} {key} failed: {reason}")
            context.log.debug(traceback.format_exc())
            results[str(key)] = SymbolOutcome.failed(reason)
        if i % step == 0 or i == len(keys):
            name = label or context.asset_key.to_user_string()
            context.log.info(f"{name}: {i}/{len(keys)} keys, {time.monotonic() - started:.1f}s")
    return results


def summarize(results: dict[str, Result]) -> dict[str, object]:
    ok = [k for k, v in results.items() if isinstance(v, pl.DataFrame)]
    failed = {k: v.reason for k, v in results.items() if isinstance(v, SymbolOutcome) and v.status == "failed"}
    skipped = {k: v.reason for k, v in results.items() if isinstance(v, SymbolOutcome) and v.status == "skipped"}
    rows = sum(results[k].height for k in ok)  # type: ignore[union-attr]
    days = sorted({split_key(k)[0].isoformat() for k in results})
    return {"ok": ok, "failed": failed, "skipped": skipped, "rows": rows, "days": days}


def _table_md(items: dict[str, str], limit: int = 50) -> str:
    lines = ["| key | reason |", "|---|---|"]
    for key, reason in list(sorted(items.items()))[:limit]:
        lines.append(f"| {key} | {reason.replace('|', '/')[:200]} |")
    if len(items) > limit:
        lines.append(f"| … | {len(items) - limit} more |")
    return "\n".join(lines)


def outputs_with_check(results: dict[str, Result], check_name: str, extra: dict | None = None):
    """The asset's ``Output`` (aggregate metadata) and one aggregate check naming failed symbols."""
    s = summarize(results)
    metadata = {
        "keys": len(results),
        "keys_ok": len(s["ok"]),
        "keys_failed": len(s["failed"]),
        "keys_skipped": len(s["skipped"]),
        "rows": s["rows"],
        "dates": ", ".join(s["days"]),
        **(extra or {}),
    }
    if s["failed"]:
        metadata["failed"] = MetadataValue.md(_table_md(s["failed"]))
    if s["skipped"]:
        metadata["skipped"] = MetadataValue.md(_table_md(s["skipped"]))
    yield Output(results, metadata=metadata)
    yield AssetCheckResult(
        check_name=check_name,
        passed=not s["failed"],
        severity=AssetCheckSeverity.WARN,
        metadata={
            "failed_symbols": MetadataValue.json(s["failed"]),
            "skipped": len(s["skipped"]),
            "ok": len(s["ok"]),
        },
    )
