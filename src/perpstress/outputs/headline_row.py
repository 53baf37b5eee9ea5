"""A run's headline numbers as one flat row: ``{"liquidated_usd": ..., "long_share": ..., ...}``.

A pure function over ``summary.json`` (a dict), shared by the Python API (``Run.headline()``), the ``runs`` view of
``perpstress query``, the sweep's ``results.parquet`` (whose metric columns start with this row) and anything else
that needs one row per run, so a query can join or union runs and sweeps.

Keys the cascade engine has always written are required (``liquidations``, ``adl``, ``insurance_funds``,
``bad_debt_usd``); every other section (``prices``, ``invariants``, ``hedges``, ``transfers``, ``collateral``) adds
its columns when present and nothing when absent, so summaries of older and newer runs both work.

Definitions, stated plainly:

- ``long_share``: the long side's share of liquidated *notional* (USD), not of the count; ``None`` when nothing
  was liquidated.
- ``fund_drawdown_usd_<venue>``: the fund's start balance minus its lowest balance over the run (USD, >= 0);
  ``fund_drawdown_usd`` their sum over venues. A backstop vault that goes below zero counts in full.
- ``worst_price_drawdown``: the deepest peak-to-trough fall of any market's mark price (a fraction, e.g. -0.39),
  and ``worst_drawdown_market`` that market (``venue:SYMBOL``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

HeadlineValue = float | int | str | None


def headline(summary: Mapping[str, Any]) -> dict[str, HeadlineValue]:
    """The headline numbers of one run's ``summary.json`` as a flat dict (USD, counts, fractions).

    Always present: ``liquidated_usd``, ``liquidations_count``, ``liquidated_long_usd``, ``liquidated_short_usd``,
    ``long_share``, ``adl_usd``, ``adl_count``, ``bad_debt_usd``, ``fund_drawdown_usd``; per venue
    ``liquidated_usd_<venue>``, ``adl_usd_<venue>`` and, for each insurance fund or backstop vault,
    ``fund_{start,end,min,drawdown}_usd_<venue>``. With the summary's ``by_venue``: ``adl_count_<venue>`` and
    ``bad_debt_usd_<venue>``. With the summary's ``prices``: ``worst_price_drawdown`` and
    ``worst_drawdown_market``; with ``invariants``: ``money_error_usd`` (largest absolute error of total money, USD)
    and ``oi_imbalance_lots``; with ``hedges``: ``hedges_broken``, ``hedges_broken_notional_usd``; with
    ``transfers``: ``transfers_count``, ``transfers_delayed_count``, ``transfers_max_delay_s``; with a non-empty
    ``collateral``: ``collateral_min_price`` (lowest margin price of any collateral asset on any venue, in units of
    its reference), ``collateral_min_price_pair`` (``ASSET@venue``) and ``collateral_liquidations_caused``.
    """
    liq = summary["liquidations"]
    adl = summary["adl"]
    funds: Mapping[str, Mapping[str, Any]] = summary["insurance_funds"]
    liquidated = float(liq["notional_usd"])
    long_usd = float(liq["long_notional_usd"])
    row: dict[str, HeadlineValue] = {
        "liquidated_usd": liquidated,
        "liquidations_count": int(liq["count"]),
        "liquidated_long_usd": long_usd,
        "liquidated_short_usd": float(liq["short_notional_usd"]),
        "long_share": long_usd / liquidated if liquidated > 0 else None,
        "adl_usd": float(adl["notional_usd"]),
        "adl_count": int(adl["count"]),
        "bad_debt_usd": float(summary["bad_debt_usd"]),
        "fund_drawdown_usd": float(sum(_drawdown(f) for f in funds.values())),
    }
    prices: Mapping[str, Mapping[str, Any]] = summary.get("prices") or {}
    if prices:
        market, stats = min(prices.items(), key=lambda kv: float(kv[1]["max_drawdown"]))
        row["worst_price_drawdown"] = float(stats["max_drawdown"])
        row["worst_drawdown_market"] = market
    invariants = summary.get("invariants") or {}
    if "money_conservation_max_abs_error_usd" in invariants:
        row["money_error_usd"] = float(invariants["money_conservation_max_abs_error_usd"])
    if "open_interest_max_imbalance" in invariants:
        row["oi_imbalance_lots"] = int(invariants["open_interest_max_imbalance"])
    row.update(_optional(summary))
    liq_by_venue = liq.get("by_venue") or {}
    adl_by_venue = adl.get("by_venue") or {}
    for venue in dict.fromkeys([*funds, *liq_by_venue, *adl_by_venue]):
        row[f"liquidated_usd_{venue}"] = float(liq_by_venue.get(venue, 0.0))
        row[f"adl_usd_{venue}"] = float(adl_by_venue.get(venue, 0.0))
    for venue, stats in (summary.get("by_venue") or {}).items():  # absent from summaries written before it existed
        row[f"adl_count_{venue}"] = int(stats["adl_count"])
        row[f"bad_debt_usd_{venue}"] = float(stats["bad_debt_usd"])
    for venue, fund in funds.items():
        row[f"fund_start_usd_{venue}"] = float(fund["start_usd"])
        row[f"fund_end_usd_{venue}"] = float(fund["end_usd"])
        row[f"fund_min_usd_{venue}"] = float(fund["min_usd"])
        row[f"fund_drawdown_usd_{venue}"] = _drawdown(fund)
    return row


def _drawdown(fund: Mapping[str, Any]) -> float:
    return max(0.0, float(fund["start_usd"]) - float(fund["min_usd"]))


def _optional(summary: Mapping[str, Any]) -> dict[str, HeadlineValue]:
    out: dict[str, HeadlineValue] = {}
    hedges = summary.get("hedges")
    if isinstance(hedges, Mapping) and "broken" in hedges:
        broken = hedges["broken"]  # a count, or a table {count, notional_usd}
        if isinstance(broken, Mapping):
            out["hedges_broken"] = int(broken["count"])
            if "notional_usd" in broken:
                out["hedges_broken_notional_usd"] = float(broken["notional_usd"])
        else:
            out["hedges_broken"] = int(broken)
        if "broken_notional_usd" in hedges:
            out["hedges_broken_notional_usd"] = float(hedges["broken_notional_usd"])
    transfers = summary.get("transfers")
    if isinstance(transfers, Mapping) and "count" in transfers:
        out["transfers_count"] = int(transfers["count"])
        out["transfers_delayed_count"] = int(transfers.get("delayed_count", 0))
        if "max_delay_s" in transfers:
            out["transfers_max_delay_s"] = float(transfers["max_delay_s"])
    collateral = summary.get("collateral")
    if isinstance(collateral, Mapping):
        priced = {k: v for k, v in collateral.items() if isinstance(v, Mapping) and v.get("min_price") is not None}
        if priced:
            pair, worst = min(priced.items(), key=lambda kv: float(kv[1]["min_price"]))
            out["collateral_min_price"] = float(worst["min_price"])
            out["collateral_min_price_pair"] = pair
            out["collateral_liquidations_caused"] = sum(int(v.get("liquidations_caused", 0)) for v in priced.values())
    return out
