"""The headline numbers of a run: what a report's cards and ``perpstress compare`` show first.

A pure function over ``summary.json`` (a dict), so the report, the comparison table and tests agree on one set of
numbers and one way of writing them. Keys the cascade engine writes today are required (``liquidations``, ``adl``,
``insurance_funds``, ``bad_debt_usd``, ``prices``, ``invariants``); keys added later (``hedges``, ``transfers``,
``collateral``) and a run's validation results are used when present and skipped when absent.

Assumptions stated plainly:

- "Long share" is the long side's share of liquidated *notional* (USD), not of the count.
- The money check passes when the largest absolute error of total money over the run is below
  :data:`CONSERVATION_TOLERANCE_USD` (one cent) and open interest never went out of balance; the engine's own
  tests hold it to ~1e-6 USD, so a report that shows a failure points at a bug, not at rounding.
- The worst drawdown is the most negative peak-to-trough move of a market's mark price (``prices.*.max_drawdown``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

Tone = Literal["good", "bad", "neutral"]
Unit = Literal["usd", "count", "fraction", "seconds", "price"]
Better = Literal["lower", "higher"]

CONSERVATION_TOLERANCE_USD = 0.01
"""Largest money-conservation error (USD, whole run) that the headline still calls conserved: one cent."""


@dataclass(frozen=True)
class Headline:
    """One headline number of a run.

    ``value`` is in ``unit`` (USD, a count, a fraction such as 0.42 for 42 %, seconds or a price); ``text`` is the
    value as the report prints it and ``detail`` the line under it. ``better`` says which direction of change is
    an improvement when two runs are compared (None: neither). ``card`` is False for numbers that a card already
    shows in another card's detail (counts), which the comparison table still lists.
    """

    key: str
    label: str
    value: float | None
    unit: Unit
    text: str
    detail: str = ""
    tone: Tone = "neutral"
    better: Better | None = None
    card: bool = True


def usd(value: float | None, digits: int = 1) -> str:
    """``$141.3M``, ``-$8.6M``, ``$950``: US dollars with a K/M/B suffix."""
    if value is None or not math.isfinite(value):
        return "n/a"
    sign = "-" if value < 0 else ""
    a = abs(value)
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= scale:
            return f"{sign}${a / scale:,.{digits}f}{suffix}"
    return f"{sign}${a:,.0f}"


def percent(value: float | None, digits: int = 1) -> str:
    """``42.0%`` from 0.42."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value * 100:.{digits}f}%"


def headline_numbers(
    summary: Mapping[str, Any], validation: Sequence[Mapping[str, Any]] | None = None
) -> list[Headline]:
    """The headline numbers of one run, in the order a report shows them.

    ``summary`` is a run's ``summary.json``; ``validation`` the rows of its ``validation.json`` (each with a
    ``pass`` flag) when the scenario has targets.
    """
    out: list[Headline] = []
    liq = summary["liquidations"]
    total = float(liq["notional_usd"])
    count = int(liq["count"])
    venues = len(liq.get("by_venue", {}))
    out.append(
        Headline(
            "liquidated_usd",
            "Liquidated",
            total,
            "usd",
            usd(total),
            f"{count:,} liquidations on {venues} venue{'s' if venues != 1 else ''}",
            "bad" if total > 0 else "good",
            "lower",
        )
    )
    out.append(Headline("liquidation_count", "Liquidations", count, "count", f"{count:,}", better="lower", card=False))
    long_usd, short_usd = float(liq["long_notional_usd"]), float(liq["short_notional_usd"])
    share = long_usd / total if total > 0 else None
    out.append(
        Headline(
            "long_share",
            "Longs' share of liquidations",
            share,
            "fraction",
            percent(share, 0),
            f"{usd(long_usd)} long, {usd(short_usd)} short",
        )
    )
    adl = summary["adl"]
    adl_usd, adl_count = float(adl["notional_usd"]), int(adl["count"])
    out.append(
        Headline(
            "adl_usd",
            "Auto-deleveraged",
            adl_usd,
            "usd",
            usd(adl_usd),
            f"{adl_count:,} ADL fills" + (f" on {', '.join(adl['by_venue'])}" if adl.get("by_venue") else ""),
            "bad" if adl_usd > 0 else "good",
            "lower",
        )
    )
    out.append(Headline("adl_count", "ADL fills", adl_count, "count", f"{adl_count:,}", better="lower", card=False))
    bad_debt = float(summary["bad_debt_usd"])
    out.append(
        Headline(
            "bad_debt_usd",
            "Bad debt",
            bad_debt,
            "usd",
            usd(bad_debt),
            "losses no account, fund or ADL covered",
            "bad" if bad_debt > 0 else "good",
            "lower",
        )
    )
    for venue, fund in summary["insurance_funds"].items():
        start, end, low = float(fund["start_usd"]), float(fund["end_usd"]), float(fund["min_usd"])
        change = (end - start) / start if start > 0 else None
        out.append(
            Headline(
                f"fund:{venue}",
                f"Insurance fund {venue}",
                end,
                "usd",
                f"{usd(start)} \u2192 {usd(end)}",
                f"min {usd(low)}"
                + (f", {'+' if change >= 0 else ''}{percent(change, 0)} over the run" if change is not None else ""),
                "bad" if end < 0 else ("good" if end >= start else "neutral"),
                "higher",
            )
        )
    prices = summary.get("prices") or {}
    if prices:
        market, stats = min(prices.items(), key=lambda kv: kv[1]["max_drawdown"])
        dd = float(stats["max_drawdown"])
        out.append(
            Headline(
                "worst_drawdown",
                "Worst drawdown",
                dd,
                "fraction",
                percent(dd),
                f"{market} mark, {stats['max']:,.6g} \u2192 {stats['min']:,.6g}",
                "bad" if dd < -0.2 else "neutral",
                "higher",
            )
        )
    inv = summary["invariants"]
    err = float(inv["money_conservation_max_abs_error_usd"])
    imbalance = int(inv.get("open_interest_max_imbalance", 0))
    ok = err <= CONSERVATION_TOLERANCE_USD and imbalance == 0
    out.append(
        Headline(
            "money_conservation_error_usd",
            "Money conserved",
            err,
            "usd",
            "yes" if ok else "NO",
            f"max error ${err:.2g}; open interest " + ("balanced" if imbalance == 0 else f"off by {imbalance:,} lots"),
            "good" if ok else "bad",
            "lower",
        )
    )
    out.extend(_optional(summary, validation))
    return out


def _optional(summary: Mapping[str, Any], validation: Sequence[Mapping[str, Any]] | None) -> list[Headline]:
    """Headlines from summary keys that only some runs have (hedges, transfers, collateral) and validation."""
    out: list[Headline] = []
    hedges = summary.get("hedges")
    if isinstance(hedges, Mapping) and "broken" in hedges:
        broken = int(hedges["broken"])
        accounts = hedges.get("accounts")
        notional = hedges.get("broken_notional_usd")
        detail = f"of {int(accounts):,} hedged accounts" if accounts is not None else ""
        if notional is not None:
            detail += f"{', ' if detail else ''}{usd(float(notional))} left unhedged"
        out.append(
            Headline(
                "hedges_broken",
                "Broken hedges",
                broken,
                "count",
                f"{broken:,}",
                detail,
                "bad" if broken else "good",
                "lower",
            )
        )
    transfers = summary.get("transfers")
    if isinstance(transfers, Mapping) and "count" in transfers:
        delayed = int(transfers.get("delayed_count", 0))
        max_delay = transfers.get("max_delay_s")
        detail = f"of {int(transfers['count']):,} transfers"
        if max_delay is not None:
            detail += f"; longest {float(max_delay):,.0f} s"
        out.append(
            Headline(
                "transfers_delayed",
                "Delayed transfers",
                delayed,
                "count",
                f"{delayed:,}",
                detail,
                "bad" if delayed else "good",
                "lower",
            )
        )
    collateral = summary.get("collateral")
    if isinstance(collateral, Mapping) and collateral:
        rows = [(k, v) for k, v in collateral.items() if isinstance(v, Mapping) and v.get("min_price") is not None]
        if rows:
            name, worst = min(rows, key=lambda kv: float(kv[1]["min_price"]))
            caused = sum(int(v.get("liquidations_caused", 0)) for _, v in rows)
            out.append(
                Headline(
                    "collateral_min_price",
                    "Lowest collateral price",
                    float(worst["min_price"]),
                    "price",
                    f"{float(worst['min_price']):.4g}",
                    f"{name}; {caused:,} liquidations caused by collateral value",
                    "bad" if caused else "neutral",
                    "higher",
                )
            )
    if validation:
        passed = sum(1 for row in validation if row.get("status") == "pass")
        n = len(validation)
        out.append(
            Headline(
                "validation_passed",
                "Validation targets met",
                passed,
                "count",
                f"{passed} of {n}",
                "simulated value within tolerance of the real one",
                "good" if passed == n else "bad",
                "higher",
            )
        )
    return out


@dataclass(frozen=True)
class HeadlineDiff:
    """One headline number in two runs, as ``perpstress compare`` prints it."""

    key: str
    label: str
    text_a: str
    text_b: str
    change: str
    verdict: Tone
    """"good" when B is better than A by the number's own ``better`` direction, "bad" when worse."""


def compare_headlines(a: Sequence[Headline], b: Sequence[Headline]) -> list[HeadlineDiff]:
    """Pair two runs' headline numbers by key (A's order, then B's extra keys); a key only one run has shows "-"."""
    by_b = {h.key: h for h in b}
    keys = [h.key for h in a] + [h.key for h in b if h.key not in {x.key for x in a}]
    by_a = {h.key: h for h in a}
    out = []
    for key in keys:
        ha, hb = by_a.get(key), by_b.get(key)
        ref = ha or hb
        assert ref is not None
        text_a = ha.text if ha else "-"
        text_b = hb.text if hb else "-"
        change: str = ""
        verdict: Tone = "neutral"
        if ha and hb and ha.value is not None and hb.value is not None:
            change, verdict = _change(ref, float(ha.value), float(hb.value))
        out.append(HeadlineDiff(key, ref.label, text_a, text_b, change, verdict))
    return out


def _change(h: Headline, a: float, b: float) -> tuple[str, Tone]:
    d = b - a
    if h.key == "money_conservation_error_usd":
        return (f"{d:+.2g} USD" if d else "same"), "neutral"
    if d == 0:
        return "same", "neutral"
    if h.unit == "usd":
        text = ("+" if d > 0 else "") + usd(d)
        if a != 0:
            text += f" ({d / abs(a):+.0%})"
    elif h.unit == "fraction":
        text = f"{d * 100:+.1f} pp"
    elif h.unit == "count":
        text = f"{d:+,.0f}"
    else:
        text = f"{d:+.4g}"
    verdict: Tone = "neutral"
    if h.better is not None:
        verdict = "good" if (d < 0) == (h.better == "lower") else "bad"
    return text, verdict
