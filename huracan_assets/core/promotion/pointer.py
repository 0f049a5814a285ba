"""The champion pointer of a coin and day: the decision, the champion after it, and what it carries to D+1.

A row of ``champion_pointer`` (:data:`POINTER_SCHEMA`) holds the champion after D's decision (its model id,
bundle path and sha256, and the day it was promoted), the decision and its gate values, the shadow summaries,
``tests_since_promotion`` (the retests spent since the coin's last promotion, read back on D+1 by the alpha
spending of ``multiplicity.py``) and the two forward ledgers as JSON.

Here, pure: the day's decisions for all coins together (:func:`decide_pairs`, with the per-coin and global kill
switches), the row of a decided coin (:func:`decided_row`) and of a coin with no decision today, which carries
the champion of D-1 forward (:func:`carried_row`). Publishing the bundle and moving ``latest.json`` is I/O and
lives in ``publishing/champion.py``; its result comes in here as :class:`Published`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import polars as pl

from huracan_assets.core.promotion.gates import Candidate, Decision, PromotionSpec, ShadowStats, decide_day
from huracan_assets.core.promotion.multiplicity import next_trial, retests_after
from huracan_assets.core.shadow.ledger import Ledger
from huracan_assets.core.shadow.pair import ShadowPair
from huracan_assets.core.shadow.trader import ShadowResult

POINTER_SCHEMA = {
    "champion_model_id": pl.String,
    "bucket_path": pl.String,
    "sha256": pl.String,
    "champion_as_of": pl.Date,
    "validated_model_id": pl.String,
    "validated_path": pl.String,
    "promoted": pl.Boolean,
    "reason": pl.String,
    "kill_switch": pl.Boolean,
    "latest_moved": pl.Boolean,
    "challenger_model_id": pl.String,
    "challenger_trades": pl.Int64,
    "challenger_net_bps": pl.Float64,
    "challenger_return": pl.Float64,
    "champion_trades": pl.Int64,
    "champion_net_bps": pl.Float64,
    "champion_return": pl.Float64,
    "gates": pl.String,
    "tests_since_promotion": pl.Int64,  # retests since the last promotion, today's included (0: promoted today)
    # the forward-only track records (core/shadow/ledger.py), as JSON: each day appends only D's bars
    "champion_ledger": pl.String,  # the champion's, since the day after its promotion (None: promoted today)
    "challenger_ledger": pl.String,  # "always trade the latest challenger", one per coin
}
GLOBAL_KILL_REASON = "global kill switch: no promotion anywhere today"


@dataclass(frozen=True)
class Published:
    """What publishing a promotion wrote (``publishing/champion.py``'s pointer)."""

    model_id: str
    bucket_path: str
    sha256: str
    latest_moved: bool


@dataclass(frozen=True)
class DayDecisions:
    """The decisions of one day: per coin key a Decision, or the ValueError that refused the coin's stats;
    the keys past the per-coin kill switch; and whether the global kill switch stopped every promotion."""

    decisions: dict[str, Decision | ValueError]
    trials: dict[str, int]
    killed: list[str]
    stop_all: bool


def tests_since_promotion(previous: Mapping[str, Any] | None) -> int | None:
    """The retests the pointer of D-1 says were spent since the coin's last promotion (None: no pointer, or one
    written before the count existed: the count starts again)."""
    return None if previous is None else previous.get("tests_since_promotion")


def decide_pairs(pairs: Mapping[str, ShadowPair], spec: PromotionSpec, global_kill_share: float) -> DayDecisions:
    """Every coin of the day decided together (the BH family is the day's coins), each at its retest number since
    its last promotion. A coin whose stats cover in-sample bars gets its ValueError. When more than
    ``global_kill_share`` of the coins are past the kill switch, no coin is promoted."""
    killed = [k for k, pair in pairs.items() if pair.killed(spec.kill_switch_drawdown)]
    stop_all = bool(pairs) and len(killed) / len(pairs) > global_kill_share
    trials = {k: next_trial(tests_since_promotion(pair.previous)) for k, pair in pairs.items()}
    candidates: dict[str, Candidate] = {}
    refused: dict[str, ValueError] = {}
    for key, pair in pairs.items():
        try:
            candidates[key] = Candidate(pair.challenger_stats, pair.champion_stats, trials[key])
        except ValueError as exc:
            refused[key] = exc
    decisions: dict[str, Decision | ValueError] = {**decide_day(candidates, spec), **refused}
    if stop_all:
        decisions = {
            k: Decision(False, GLOBAL_KILL_REASON, d.gates, True) if isinstance(d, Decision) and d.promote else d
            for k, d in decisions.items()
        }
    return DayDecisions(decisions, trials, killed, stop_all)


def decision_document(decision: Decision, pair: ShadowPair) -> dict[str, Any]:
    """The snapshot of a decision: the gate values, the shadow stats, the ledgers and what a promotion publishes."""
    doc = {"gates": decision.gates, "challenger": _plain(pair.challenger.stats),
           "published": published_models(pair.challenger_row)}  # fmt: skip
    if pair.ledgers.get("champion") is not None:
        doc["champion"] = _plain(pair.ledgers["champion"].stats())
    if pair.ledgers.get("challenger") is not None:
        doc["challenger_ledger"] = _plain(pair.ledgers["challenger"].stats())
    return doc


def promoted_path(row: Mapping[str, Any]) -> str:
    """The bundle a promotion publishes: the refit through D when the config makes one, else the validated one."""
    return row.get("refit_path") or row["bundle_path"]


def decided_row(
    day: date, pair: ShadowPair, decision: Decision, trial: int, published: Published | None
) -> pl.DataFrame:
    """The pointer row of a coin decided on ``day`` (``published``: what a promotion wrote; None otherwise)."""
    if decision.promote != (published is not None):
        raise ValueError("a promotion needs its publication, and only a promotion has one")
    row = pair.challenger_row
    base = {
        "promoted": decision.promote,
        "reason": decision.reason,
        "kill_switch": decision.kill_switch,
        "challenger_model_id": row["model_id"],
        **_result_summary("challenger", pair.challenger),
        **_champion_summary(pair.champion_stats),
        "gates": json.dumps(decision_document(decision, pair), sort_keys=True, default=str),
        "tests_since_promotion": retests_after(trial, decision.promote),
        **ledger_columns(pair.ledgers, promoted=decision.promote),
    }
    if published is not None:
        champ = {
            "champion_model_id": published.model_id,
            "bucket_path": published.bucket_path,
            "sha256": published.sha256,
            "champion_as_of": day,
            # the model the promotion was validated on, when a refit through D was published instead
            "validated_model_id": row["model_id"] if row.get("refit_path") else None,
            "validated_path": row["bundle_path"] if row.get("refit_path") else None,
            "latest_moved": published.latest_moved,
        }
    else:
        champ = _carried(pair.previous)
    return pl.DataFrame([{**champ, **base}], schema=POINTER_SCHEMA)


def carried_row(previous: Mapping[str, Any] | None, reason: str, ledgers: Mapping[str, Ledger | None]) -> pl.DataFrame:
    """No decision for the coin today: the champion of D-1 stays, with the reason and the ledgers."""
    return pl.DataFrame(
        [
            {
                **_carried(previous),
                "promoted": False,
                "reason": f"no decision: {reason}",
                "kill_switch": False,
                "tests_since_promotion": tests_since_promotion(previous) or 0,  # no retest today
                **ledger_columns(ledgers, promoted=False),
            }
        ],
        schema=POINTER_SCHEMA,
    )


def ledger_columns(ledgers: Mapping[str, Ledger | None], promoted: bool) -> dict[str, str | None]:
    """The pointer's ledger columns (JSON). A promotion ends the old champion's ledger: the new champion's starts
    the next day, on bars it has never seen."""
    champion = ledgers.get("champion")
    challenger = ledgers.get("challenger")
    return {
        "champion_ledger": None if promoted or champion is None else champion.to_json(),
        "challenger_ledger": None if challenger is None else challenger.to_json(),
    }


def published_models(row: Mapping[str, Any]) -> dict[str, Any]:
    """What a promotion of ``row`` publishes, for the pointer's snapshot."""
    validated = {"validated_model_id": row["model_id"], "validated_bundle": row["bundle_path"]}
    if row.get("refit_path"):
        return {"model": "refit", "refit_model_id": row["refit_model_id"], "refit_bundle": row["refit_path"],
                **validated}  # fmt: skip
    note = row.get("refit_note")
    return {"model": "validated", **validated, **({"note": note} if note else {})}


def decision_records(day: date, decided: DayDecisions, pairs: Mapping[str, ShadowPair],
                     published: Mapping[str, str | None]) -> list[dict[str, Any]]:  # fmt: skip
    """The day's decision log (one JSON-ready record per coin decided, plus one for a global stop): its kind
    (``promotion``, ``refusal``, ``kill``, ``global_kill`` or ``publish_failed``), the reason, the models, the retest
    number and the decision's document (gates and shadow stats). ``published``: per promoted key, the model id
    published (None: its publication failed)."""
    records = []
    for key, pair in sorted(pairs.items()):
        decision = decided.decisions.get(key)
        symbol = key.split("|", 1)[1]
        base = {"date": day.isoformat(), "symbol": symbol, "model_id": pair.challenger_row["model_id"],
                "champion_model_id": (pair.previous or {}).get("champion_model_id"),
                "trial": decided.trials.get(key)}  # fmt: skip
        if isinstance(decision, Exception) or decision is None:
            records.append({**base, "kind": "refusal", "reason": f"stats refused: {decision}", "document": {}})
            continue
        if decision.promote:
            kind = "promotion" if published.get(key) else "publish_failed"
        elif key in decided.killed:
            kind = "kill"
        else:
            kind = "refusal"
        document = json.loads(json.dumps(decision_document(decision, pair), default=str))
        records.append({**base, "kind": kind, "reason": decision.reason, "document": document})
    if decided.stop_all:
        records.append({"date": day.isoformat(), "symbol": "*", "kind": "global_kill", "reason": GLOBAL_KILL_REASON,
                        "model_id": None, "champion_model_id": None, "trial": None,
                        "document": {"killed": sorted(decided.killed), "coins": len(pairs)}})  # fmt: skip
    return records


def with_rollback(previous: Mapping[str, Any] | None, rollback: Mapping[str, Any]) -> dict[str, Any]:
    """The pointer of D-1 as the run of D reads it after an operator's rollback as of D-1 (``rollback``: the
    rolled-back champion's ``model_id``, ``bucket_path``, ``sha256`` and ``as_of``). The rolled-back model is
    the champion, chosen on D-1: its ledger starts on D, on bars after the choice, and the retest count starts
    again, as after a promotion. The challenger's ledger is kept."""
    row = dict(previous or {})
    row.update(
        champion_model_id=rollback["model_id"],
        bucket_path=rollback["bucket_path"],
        sha256=rollback["sha256"],
        champion_as_of=rollback["as_of"],
        validated_model_id=None,
        validated_path=None,
        champion_ledger=None,
        tests_since_promotion=0,
    )
    return row


def _carried(previous: Mapping[str, Any] | None) -> dict[str, Any]:
    keep = ("champion_model_id", "bucket_path", "sha256", "champion_as_of", "validated_model_id", "validated_path")
    return {**{k: (previous or {}).get(k) for k in keep}, "latest_moved": False}


def _plain(stats: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in stats.items()}


def _result_summary(role: str, res: ShadowResult | None) -> dict[str, Any]:
    if res is None:
        return {f"{role}_trades": None, f"{role}_net_bps": None, f"{role}_return": None}
    net = res.stats["net_bps_per_trade"]
    return {
        f"{role}_trades": int(res.stats["n_trades"]),
        f"{role}_net_bps": float(net) if np.isfinite(net) else None,
        f"{role}_return": float(res.stats["total_return"]),
    }


def _champion_summary(stats: ShadowStats | None) -> dict[str, Any]:
    if stats is None:
        return {"champion_trades": None, "champion_net_bps": None, "champion_return": None}
    net = stats.trade_net_bps
    return {
        "champion_trades": int(net.size),
        "champion_net_bps": float(net.mean()) if net.size else None,
        "champion_return": float(np.prod(1.0 + stats.daily_returns) - 1.0),
    }
