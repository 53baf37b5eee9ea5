"""Write the built-in ``oct-2025`` scenario from its calibration figures (each named with its source below).

Run: ``python scripts/make_oct2025.py`` (writes src/perpstress/presets/scenarios/oct-2025.toml; with
``--crowd-flow PATH``, a copy with the crowd's flow and the makers' cross-venue hedges on, to PATH; with
``--flow-hold PATH``, the same whose flow positions are closed after a holding time; with ``--wider-market PATH``, a
copy whose impact stays in the wider market instead of the makers' quotes, :func:`wider_market_variant`). Edit the
figures here, not the TOML, so the arithmetic from aggregates to per-market numbers stays visible.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_longtail_presets import FIRST_TAIL, LONG_TAIL, PRICE, symbol

DATA = Path(__file__).resolve().parents[1] / "data/oct2025"
MAJORS = ["BTC", "ETH", "SOL", "XRP", "BNB", "DOGE"]  # the validation's majors (oct2025_targets.toml)


def sourced(name: str, scope: str) -> dict[str, float]:
    """base -> open interest in data/oct2025/NAME (each row names its source and confidence)."""
    with (DATA / name).open(newline="") as f:
        return {r["base"]: float(r["open_interest_usd"]) for r in csv.DictReader(f)
                if r.get("venue", r.get("scope")) == scope}  # fmt: skip


# --- open interest -------------------------------------------------------------------------------------------------
# Whole market right before the crash: ~$220B (Decrypt/CoinGlass, secondary; data/oct2025/market_asset_totals.csv);
# per asset BTC $70B, ETH $28B, SOL $14.83B, XRP $8.36B, DOGE $5.03B (Oct 7), BNB $2.5B (Sep 21), same file.
TOTAL_OI = sourced("market_asset_totals.csv", "all_exchanges")
MARKET_OI = TOTAL_OI.pop("ALL")  # the file's last ALL row is the Oct 10 figure (dict keeps the last)
TOTAL_OI.pop("XPL", None)
MAJOR_SHARE = sum(TOTAL_OI[a] for a in MAJORS) / MARKET_OI
# -> 58.5 % of the market in the six majors, 41.5 % outside them: the non-majors' sourced share (derived).
BINANCE_ROWS = sourced("open_interest.csv", "binance")  # BTC, ETH, SOL, XRP, DOGE, BNB (secondary / estimated)
# Binance's total: its six majors' sourced open interest over the market's major share (derived: the venue is
# assumed to hold majors and alts in the market's proportions). $31.4B / 0.585 = $53.7B.
VENUE_OI = {"binance": sum(BINANCE_ROWS.values()) / MAJOR_SHARE}
# OKX, Bybit and Bitget relative to Binance by 2025 derivatives volume ($25.9T, $10.76T, $9.43T, $8.17T: issue 5's
# seed figures, secondary; open interest assumed to split like volume, UNCONFIRMED).
VOLUME = {"binance": 25.9, "okx": 10.76, "bybit": 9.43, "bitget": 8.17}
VENUE_OI |= {v: VENUE_OI["binance"] * VOLUME[v] / VOLUME["binance"] for v in ("okx", "bybit", "bitget")}
# Hyperliquid: ~$13.8B before the crash, more than a third outside BTC, ETH and SOL (The Block, secondary; same file).
VENUE_OI["hyperliquid"] = sourced("market_asset_totals.csv", "hyperliquid")["ALL"]
HL_ALT_SHARE = 0.356  # BTC+ETH+SOL were 64.4 % of HL's $2.10B ADL notional (data/oct2025/README.md): "> 1/3" (2nd)
# Hyperliquid's BTC/ETH/SOL split and its alts' ranks: its ADL notional by coin 21:15-21:27 UTC
# (data/oct2025/hyperliquid_adl_notional_proxy.csv, HyperReplay) used as an open-interest ranking (ASSUMED).
with (DATA / "hyperliquid_adl_notional_proxy.csv").open(newline="") as f:
    HL_PROXY = {r["coin"]: float(r["adl_notional_usd"]) for r in csv.DictReader(f)}
HL_RANK = {c: i for i, c in enumerate([c for c in HL_PROXY if c not in ("BTC", "ETH", "SOL")], start=1)}
# Perpetuals listed per venue in October 2025 (UNCONFIRMED counts, except Hyperliquid's: 162 coins had ADL fills
# that night in HyperReplay's file, a lower bound). Only their logarithm matters below.
LISTED = {"binance": 500, "okx": 270, "bybit": 500, "bitget": 500, "hyperliquid": 162}
# Alts' open interest falls with rank r as 1 / (r + ZIPF_OFFSET) (Zipf-Mandelbrot, exponent 1: Hyperliquid's ADL
# proxy by coin falls about as 1/r over its ranks 1-20; the offset, which makes the top alts of similar size,
# is ASSUMED).
ZIPF_OFFSET = 5.0
# CEX alts' rank order: Hyperliquid's proxy order where the coin is in it (ASSUMED), listed order otherwise.


def venue_markets() -> dict[str, dict[str, str]]:
    """venue -> base -> symbol: the preset's four default markets, then its long tail (presets' order)."""
    first = FIRST_TAIL | {"hyperliquid": "DOGE"}
    out = {}
    for venue, tail in LONG_TAIL.items():
        bases = ["BTC", "ETH", "SOL", first[venue], *(b for b, _ in tail)]
        out[venue] = {b: symbol(venue, b) for b in bases}
    return out


MARKETS = venue_markets()
# The last alts listed on each venue stand for the ranks no other simulated market holds: each is a cohort of
# listed alts of about equal total open interest, with one member's tiers, position sizes and depth per dollar of
# open interest (so a cohort's market moves as each member's would). The rest of each venue's alts are themselves.
COHORTS = {"binance": ["HIVE", "POWR", "SIREN", "BNT", "SQD", "SKYAI"], "okx": ["ACE", "AGLD", "0G", "ARKM", "BICO"],
           "bybit": ["NEIROETH", "SUNDOG", "1000RATS", "HIPPO", "TUT"], "bitget": ["SUPER", "1000SATS"],
           "hyperliquid": ["IP", "TAO", "EIGEN", "LINEA"]}  # fmt: skip


def open_interest() -> dict[str, dict[str, float]]:
    """venue -> base -> open interest, USD (one side)."""
    out: dict[str, dict[str, float]] = {}
    hl_majors = {a: HL_PROXY[a] for a in ("BTC", "ETH", "SOL")}
    hl_major_oi = {a: VENUE_OI["hyperliquid"] * (1 - HL_ALT_SHARE) * v / sum(hl_majors.values())
                   for a, v in hl_majors.items()}  # fmt: skip
    rest = {a: TOTAL_OI[a] - BINANCE_ROWS[a] - hl_major_oi.get(a, 0.0) for a in MAJORS}
    rest_total = sum(rest.values())
    for venue, bases in MARKETS.items():
        total = VENUE_OI[venue]
        oi: dict[str, float] = {}
        if venue == "binance":
            oi |= {a: BINANCE_ROWS[a] for a in MAJORS}
        elif venue == "hyperliquid":
            oi |= hl_major_oi
        else:  # the rest of the market's majors, in proportion
            oi |= {a: total * MAJOR_SHARE * rest[a] / rest_total for a in MAJORS}
        alts = [b for b in bases if b not in oi]
        alt_total = total - sum(oi[a] for a in MAJORS if a in oi)
        reps = COHORTS[venue]
        n_cohorts = len(reps)
        own = [b for b in alts if b not in reps]
        if venue == "hyperliquid":
            ranks = {b: HL_RANK[b] for b in own}
        else:
            order = sorted(own, key=lambda b: (HL_RANK.get(b, 10_000), own.index(b)))
            ranks = dict(zip(order, range(1, len(order) + 1), strict=True))
        weight = [1.0 / (r + ZIPF_OFFSET) for r in range(1, LISTED[venue] - len(oi) + 1)]
        scale = alt_total / sum(weight)
        oi |= {b: weight[r - 1] * scale for b, r in ranks.items()}
        left = alt_total - sum(oi[b] for b in own)
        oi |= {b: left / n_cohorts for b in reps}
        out[venue] = {b: oi[b] for b in bases}
    return out


OPEN_INTEREST = open_interest()
SMALL = {b for reps in COHORTS.values() for b in reps}
# Spot books of the alts on the four exchanges (every alt a venue lists a perpetual in: make_longtail_presets.py).
# Their calm depth: Binance's BTC/FDUSD spot book held $16.53M within 1 % (Amberdata, Jul-Aug 2025 average) against
# $244.5M on the BTCUSDT perpetual (median, Oct 10 00:00-20:00 UTC): 6.8 % (data/oct2025/market_depth.csv,
# derived); alts' spot books are given the same share of their perpetual's depth (ASSUMED). Their makers quote
# around the venue's perpetual mark (price discovery on the perpetuals; ASSUMED) and thin and withdraw by the same
# rules. An alt's index on a CEX takes the simulated venues' spot books that list it and one venue outside the
# scenario at the fundamental value ("gate", ASSUMED: the venues' per-symbol constituent lists are not stored);
# Hyperliquid's oracle keeps its published weights, so its alts follow the simulated books where they exist.
# Spot books and perpetuals form a loop (perpetual makers quote around the index, the index is these spot books,
# their makers quote around the perpetual's mark) that the outside venue, capped at 3 % from the median, cannot hold
# up. Pulling the spot books back to the fundamental value (spot_fair_value = "fundamental", a 40 % blend for the
# spot volume outside the four exchanges, spot_anchor_half_life_s = 900, basis traders) was tried and is not used:
# anchored, the alts' makers absorb the liquidations and the long tail does not fall (docs/validation.md).
SPOT_DEPTH_SHARE = 16.53e6 / 244.5e6
# Price impact is carried by the makers: a maker's quotes shift against its inventory, by `inventory_skew_bps` at its
# inventory limit. The rule: a maker that has absorbed its calm one-side depth quotes where a taker walking its whole
# calm ladder (1 %) would have left the price, i.e. a skew at the limit of (limit / depth per maker) x 1 % (the
# book's own structure before the news: depth and ladder span; every market's limit is 10 % of its open interest
# per maker and its depth 2.3 % over three makers, so one skew serves all). Measured against the market: before the
# news a minute's net taker flow of 1 % of open interest moved BTCUSDT 1.00 % and SOLUSDT 1.07 % (20 one-minute bars
# each, scripts/derive_oct2025.py), 2.3 times this rule's impact; that linear figure, carried to the crash's flows,
# takes BTC to -30 % (tried: docs/validation.md), as a linear impact must if impact is concave in size. The rule
# sits between the linear measure and a square-root law calibrated on the same calm minutes.
WALK_SPAN = 0.01
MAKER_INVENTORY_SHARE = 0.1
# Part of that impact fades: regressed on the last hour's net taker flow, September's one-minute returns of NEAR and
# FIL (calm months before the crash) keep 69.5 % of a minute's impact and lose the rest with a half-life of 6.25
# minutes (their mean response curve; each alone: 74 % and 2.75 min, 63.5 % and 10 min; scripts/derive_oct2025.py).
# A maker lays its inventory off elsewhere at that half-life (makers.lay_off: the inventory itself leaves, to the
# market outside the venues, so its limits and skew read what it still holds). Before, only the skew faded, to
# SKEW_PERMANENT of it, while the inventory stayed: Binance's BTCUSDT and ETHUSDT makers sat at their inventory
# limits from 21:11 to the end, the books with no bid and asks 11 % under the index, and 47 of the 106 perpetuals
# ended one-sided (seed 2025, 5 %; docs/validation.md). The wider-market variant keeps SKEW_PERMANENT as measured.
SKEW_PERMANENT = 0.695
SKEW_HALF_LIFE_S = 375
# Not in the scenario: resting orders beyond the makers' ladders ([resting]; BTCUSDT's book held 42.2 % as much ask
# notional between 1 % and 5 % as within 1 %, scripts/derive_oct2025.py). Tried out to 90 % with that log-even
# profile, they held the small perpetuals up (median fall 10.5 % against 15.2 %) and let USDe's collateral sales
# print down to 0.10 (docs/validation.md).
CEX = ("binance", "okx", "bybit", "bitget")
SPOT_ALTS = {v: [b for b in MARKETS[v] if b not in MAJORS] for v in CEX}


def tier(base: str) -> str:
    return "major" if base in MAJORS else "small" if base in SMALL else "mid"


# Calm depth within 1 % per maker side relative to open interest: BTCUSDT on Binance $374M at 20:30 against $16B of
# open interest = 2.3 % (scripts/derive_oct2025.py; data/oct2025/open_interest.csv). Alts' books are not thinner per
# dollar of open interest before the crash: on Binance's perpetuals XRP held 3.9-4.7 % of its open interest within
# 5 % against BTC's 3.15 %, and CoinDesk's per-venue 1 % depth over market-wide open interest is 0.03 % for BTC,
# ETH and XRP alike (data/oct2025/depth_to_oi.csv, estimated from secondary figures). So every market gets BTC's
# ratio; small caps' ratio is not measured (the same, ASSUMED). What makes a thin market thin is what its makers do
# under stress, not its calm depth per dollar.
BINANCE_BTC_DEPTH_1PCT = 374e6
DEPTH_RATIO = dict.fromkeys(("major", "mid", "small"), BINANCE_BTC_DEPTH_1PCT / BINANCE_ROWS["BTC"])
# Survivors: the ten days' path (mostly above the start) leaves many longs within reach of liquidation at 20:30.
# They would have been topped up or liquidated (and the open interest reopened) on the way, so they start at their
# chosen leverage at the start price (population.survivors = "chosen_leverage"), not 0.3-3 % above maintenance:
# that cushion put 6 % of Binance BTCUSDT's long open interest within 1 % below the start (0.9 % at the chosen
# leverage), a cliff that a calm minute's noise walks into (the pre-news cascades of the seeds whose BTC low came
# at 20:39-20:55, $4.2B of BTCUSDT liquidated in the first 12 minutes on one of them).
# Entry path: BTC mark every 6 hours from 2025-10-01 to 2025-10-10 20:00 relative to 20:30 on 10 Oct
# (scripts/derive_oct2025.py on BTCUSDT-5m-markOrIndexPrice): the crowd opened along a path mostly above the start.
ENTRY_PATH = [
    0.9767,
    0.9793,
    0.9984,
    0.9992,
    1.0187,
    1.0125,
    1.0168,
    1.0275,
    1.0295,
    1.0259,
    1.0296,
    1.0419,
    1.0463,
    1.0707,
    1.0531,
    1.0528,
    1.0553,
    1.0585,
    1.0639,
    1.0703,
    1.0665,
    1.0641,
    1.0643,
    1.0346,
    1.0401,
    1.0373,
    1.0504,
    1.0594,
    1.0539,
    1.0437,
    1.0519,
    1.0335,
    1.0410,
    1.0405,
    1.0408,
    1.0065,
]
START_PRICE = {"BTC": 116_863.4, "ETH": 4_380.0, "SOL": 207.06} | PRICE
# BTC 20:30 mark (derive script); SOL 20:30 close 207.06 (SOLUSDT 1m file); others approximate levels of the day
# (UNCONFIRMED, they only set units).
# Betas to the market factor (ASSUMED, UNCONFIRMED): majors as before; alts move more than BTC in normal times but
# the crash's extra fall is not put in their fundamental value: it must come out of their books.
BETA = {"BTC": 1.0, "ETH": 1.25, "SOL": 1.5, "XRP": 1.3, "BNB": 1.0, "DOGE": 1.6}
ALT_BETA = {"mid": 1.5, "small": 1.8}
# Alts' own calm noise: NEAR and FIL in September, 1.45e-4 and 1.26e-4 per sqrt(s) (derive script), less the
# factor's part (beta x BTC's 5.6e-5): about 1.1e-4 (derived).
ALT_IDIO = 1.1e-4


def beta(base: str) -> float:
    return BETA.get(base, ALT_BETA.get(tier(base), 1.0))


N_PERPS = sum(len(v) for v in MARKETS.values())


def macro(metric: str, as_of: str | None = None) -> float:
    """A figure of data/oct2025/macro_vol.csv (each row names its source)."""
    with (DATA / "macro_vol.csv").open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["metric"] == metric and (as_of is None or as_of in r["as_of"])]
    return float(rows[0]["value"])


# The shock sized from outside crypto's own path: the market factor moves by BTC's beta to the S&P 500 times the S&P
# 500's fall on Oct 10 (the day of both tariff posts). beta = correlation x BTC's implied vol / the S&P's: 0.5598
# (48-month correlation to 2025-09-10) x 42 % (Volmex BVIV, Oct 9-10) / 16.43 % (VIX close, Oct 9) = 1.43; the S&P
# fell 2.71 % close to close (data/oct2025/macro_vol.csv, secondary figures). The rest of crypto's fall has to come
# out of the books, the liquidation engines and ADL.
BTC_SPX_BETA = macro("btc_spx_corr_48m") * macro("btc_bviv_30d_iv", "10-09") / macro("vix_close", "10-09")
FACTOR_MOVE = math.log(1.0 + BTC_SPX_BETA * macro("spx_close_to_close_pct") / 100.0)
# The news' shape is how BTC took the day's first tariff post, six hours before (14:57 UTC; scripts/derive_oct2025.py
# on BTCUSDT's 5-minute mark bars): 28.8 % of its fall came in the three minutes to the post's bar close, the rest
# over the 35 minutes to the hour's lowest close (-2.21 % in all). Before, a quarter came in one second and the rest
# over 20 minutes (ASSUMED): the crowd's cascade then started with the jump and BTC's low came 2-7 minutes after the
# news on every seed (docs/validation.md).
JUMP_SHARE, JUMP_S, DRIFT_S = 0.288, 180, 2100
JUMP, DRIFT = JUMP_SHARE * FACTOR_MOVE, (1.0 - JUMP_SHARE) * FACTOR_MOVE
# The stress regime and risk appetite, from the same outside market: the VIX rose from 16.43 (Oct 9 close) to 21.66
# (Oct 10 close, 20:00 UTC, before the crash). The factor's volatility right after the news is the calm volatility
# times that rise (it fades with half_life_s), and the makers' risk appetite falls by its inverse, as a book held to
# a fixed value-at-risk shrinks when volatility rises. Before, the stress volatility was 0.0012 per root second (21
# times the calm one) and the appetite fell to 0.5, both ASSUMED: the fundamental's own noise then moved BTC by +-3 %
# in the minutes after the news and set much of each seed's outcome.
CALM_VOL = 0.000056  # BTC 20:30-20:50 (scripts/derive_oct2025.py)
VIX_RISE = macro("vix_close", "10-10") / macro("vix_close", "10-09")
STRESS_VOL, APPETITE_FLOOR = CALM_VOL * VIX_RISE, 1.0 / VIX_RISE


# --- Binance's book-priced collateral ------------------------------------------------------------------------------
# Before its 2025-10-14 fix Binance priced USDe collateral off an index dominated by its own USDE/USDT book, and wBETH
# and BNSOL off a mix of its own WBETHUSDT / BNSOLUSDT books (20 % / 30 %) and the staking rate times ETHUSDT /
# SOLUSDT (80 % / 70 %): coinpost.ai/ja/topics/52751 and binance.bh/en/square/post/30886289453337 (Binance's notice
# of the fix, 2nd); the same weights in 0xTodd's analysis of Oct 11 (aicoin.com/en/news-flash/2575923, 2nd). The
# rules themselves (method, weights, haircuts, rates) are the venue's, in presets/venues/binance.toml; here are the
# assets' paths, the crowd's shares and the books.
#
# Fundamental value: wBETH = ETH x its exchange rate, BNSOL = SOL x its rate (each tracks the underlying's path).
# - wBETH: 1 WBETH = 1 BETH at its launch on 2023-04-27 and grows with the ETH staking yield (Binance's launch notice,
#   binance.com/en/square/post/454021; binance.com/eth2: 1.01004 on 2023-07-22). About 3.2 %/yr for 2.45 years gives
#   ~1.08 on 2025-10-10 (derived, UNCONFIRMED: the rate history API, /sapi/v1/eth-staking/eth/history/rateHistory,
#   needs an account).
# - BNSOL: ~1.0021 SOL just after its launch on 2024-09-12 (binance.com/solana-staking, via net4site.net) and
#   1.0962441 in February 2026 (coinstats.app BNSOL analysis); interpolated at a constant yield, 1.072 on 2025-10-10
#   (derived, UNCONFIRMED).
WBETH_RATE = 1.08
BNSOL_RATE = 1.072
# The crowd's collateral shares: the share of Binance cross accounts margined in each asset (assumed, UNCONFIRMED:
# no public split; Binance compensated ~$283M to holders of the three together for 21:36-22:16 UTC, holder.io).
# Books: depth per maker within 1 % and the makers' limits are assumed (UNCONFIRMED); the makers quote, thin, widen
# and withdraw by the same rules as on every other book of the scenario (before, these three books had rules of
# their own, sizes and spreads scaling with volatility at powers 1 and 0.5-1 against 0.2 and 0.1 everywhere else: a
# fill moved the mid, the move thinned the book, the next fill moved it more, and on the default seed at 5 % the
# USDe book was empty from 20:35 to the end, its price bouncing between 0.92 and 1.02 before the news while the
# real one sat at 0.9998-1.0004). Takers: the noise flow of the scenario's other books in number (rate_per_s 0.5),
# sized to each book's volume before the crash (USDe: $100,645 a minute on Binance from Oct 9 to Oct 10 20:30,
# scripts/derive_oct2025.py; wBETH and BNSOL: ~$9-14M a day each across venues, coinstats.app / thedailycoins.io,
# 2nd, all of it put on Binance's book, UNCONFIRMED); before, 3, 1 and 0.6 orders a second of $150k, $50k and $30k
# (ASSUMED), 300 to 500 times those volumes. After the news, sellers of the collateral dominate its book (sell bias
# assumed).
TAKER_RATE, TAKER_SIGMA = 0.5, 1.0  # the scenario's [takers] rate and NoiseTakerConfig.sigma's default


def taker_median(volume_usd_per_s: float) -> float:
    """The median order (USD, whole dollars) that gives ``volume_usd_per_s`` at the takers' rate (log-normal sizes:
    mean = median x exp(sigma^2 / 2))."""
    return float(round(volume_usd_per_s / (TAKER_RATE * math.exp(TAKER_SIGMA**2 / 2))))


USDE_VOLUME_PER_S = 100_645 / 60  # Binance USDE/USDT, Oct 9 to Oct 10 20:30 (scripts/derive_oct2025.py)
STAKED_VOLUME_PER_S = 11.5e6 / 86_400  # the middle of ~$9-14M a day (2nd)
BINANCE_COLLATERAL = {
    "USDE": {"path": {"start_price": 1.0, "beta": 0.0}, "share": 0.05, "spot": "USDE/USDT",
             "makers": {"capital_usd": 20e6, "depth_usd": 700e3, "inventory_limit_usd": 3e6, "loss_limit_usd": 600e3},
             "takers": {"rate_per_s": TAKER_RATE, "median_usd": taker_median(USDE_VOLUME_PER_S),
                        "sell_bias_after_shock": 0.45}},
    "WBETH": {"path": {"tracks": "ETH", "rate": WBETH_RATE}, "share": 0.02, "spot": "WBETH/USDT",
              "makers": {"capital_usd": 3e6, "depth_usd": 100e3, "inventory_limit_usd": 300e3, "loss_limit_usd": 60e3},
              "takers": {"rate_per_s": TAKER_RATE, "median_usd": taker_median(STAKED_VOLUME_PER_S),
                         "sell_bias_after_shock": 0.45}},
    "BNSOL": {"path": {"tracks": "SOL", "rate": BNSOL_RATE}, "share": 0.01, "spot": "BNSOL/USDT",
              "makers": {"capital_usd": 1.5e6, "depth_usd": 50e3, "inventory_limit_usd": 150e3, "loss_limit_usd": 30e3},
              "takers": {"rate_per_s": TAKER_RATE, "median_usd": taker_median(STAKED_VOLUME_PER_S),
                         "sell_bias_after_shock": 0.45}},
}  # fmt: skip


def _toml_value(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else format(value, "_") if isinstance(value, float) else str(value)


def binance_collateral_lines() -> dict[str, list[str]]:
    """TOML lines for Binance's book-priced collateral (:data:`BINANCE_COLLATERAL`), by where they go: ``spot_symbols``
    (the books, for ``venues.binance.spot_symbols``), ``shock_assets``, ``crowd_collateral`` (the
    ``[crowd.collateral.binance]`` table), ``makers`` and ``takers`` (per-book overrides)."""
    out: dict[str, list[str]] = {"spot_symbols": [], "shock_assets": [], "crowd_collateral": [], "makers": [],
                                 "takers": []}  # fmt: skip
    out["crowd_collateral"].append("[crowd.collateral.binance]")
    for asset, c in BINANCE_COLLATERAL.items():
        out["spot_symbols"].append(str(c["spot"]))
        path = c["path"]
        assert isinstance(path, dict)
        out["shock_assets"] += [f"[shock.assets.{asset}]", *(f"{k} = {_toml_value(v)}" for k, v in path.items()), ""]
        out["crowd_collateral"].append(f"{asset} = {c['share']}  # share of Binance cross accounts (UNCONFIRMED)")
        for section in ("makers", "takers"):
            table = c[section]
            assert isinstance(table, dict)
            out[section] += [f'[{section}.markets."binance:{c["spot"]}"]',
                             *(f"{k} = {_toml_value(v)}" for k, v in table.items()), ""]  # fmt: skip
    out["crowd_collateral"].append("")
    return out


# The crowd's flow during the crash (issue 15, item 4), from scripts/derive_crowd_flow.py on the BTCUSDT and
# SOLUSDT 1-minute klines (taker buy / sell volume, 20:30-23:00): rates at each rule's threshold for Binance
# BTCUSDT, orders per second at scale 1, with 25 % of the excess taker volume assumed to open new positions
# (UNCONFIRMED: no open-interest series). Other markets scale by open interest against Binance BTCUSDT (ETH and the
# long tail assumed to behave like BTC, UNCONFIRMED); SOL markets by open interest against Binance SOLUSDT times
# SOL's measured rates over BTC's (0.095-0.19, their mean 0.13). Pools: the orders the rates open over the real BTC
# path (81,864 at Binance BTCUSDT), twice over, in proportion; at least 1,000.
FLOW_RATES = {"dip": 5.2, "momentum": 17.8, "squeeze": 2.7}
# The rates are measured on the crash's minutes and the flow is the crowd's answer to the news, which the scenario
# puts at the shock's at_s: before it the rules open nothing (flow.start_s). On from the start, the momentum rule fed
# on its own selling before the news on three of ten seeds (BTC at 103,223 at 20:45 on one), where the real BTCUSDT
# moved at most 0.12 % in any minute from 20:30 to 20:50 (shared/data klines; the real selling began ~20:50).
# The news reached the market at 20:50 UTC: the first 1-minute BTCUSDT bar with over ten times the median volume of
# the 20 before (shared/data klines; the targets' shock_utc, perpstress.validation.derive). Until this session the
# scenario put it at 21:00 (DESIGN.md's "~21:00"), ten minutes after the market saw it.
NEWS_AT_S = 1200  # 20:50 UTC, 20 min into the run (starts 20:30)
# Holding time of a flow position, in the --flow-hold variant only (ASSUMED, UNCONFIRMED: no public figure of how
# long positions opened in the crash were held): flow traders are intraday, so each position is closed by its owner
# after a log-normal time of median 1 hour, log-sd 1 (two thirds of them between 22 minutes and 2.7 hours). Set
# before any run with it, not fitted. Over ten seeds it held fewer targets than the flow without it (seven against
# nine, docs/validation.md).
FLOW_HOLD_MEDIAN_S = 3600.0
FLOW_HOLD_SIGMA = 1.0
FLOW_SOL_OVER_BTC = 0.13
FLOW_POOL_BINANCE_BTC = 163_728


# Makers hedging across venues (ASSUMED, UNCONFIRMED: no public figure of market makers' cross-venue hedges that
# night): the majors' makers on Binance hedge all their inventory in the same asset on Bybit (the "long on one
# venue, short on another" books that ADL broke); each hedge account holds one maker's capital (the
# [makers.markets] capital above) at up to 10x, rehedges within $1M, waits 60 s after a forced close. One way only:
# with Bybit's makers hedging on Binance too, each hedge filled the other venue's makers, whose hedge filled the
# first's, a loop that took Binance's BTCUSDT mark to 102,700-103,800 before the news on five seeds of six.
HEDGE_PAIRS = [("binance", "bybit")]


def crowd_flow_lines(hold: bool = False) -> list[str]:
    """The ``[flow]`` section and the makers' cross-venue hedges of oct-2025 (off in the built-in file;
    ``--crowd-flow PATH`` writes a copy with them); with ``hold``, the flow's holding times too."""
    lines = ["[flow]", "recent_window_s = 1800.0", "median_usd = 20_000.0", "sigma = 1.0",
             f"start_s = {NEWS_AT_S:.1f}",
             *([f"hold_median_s = {FLOW_HOLD_MEDIAN_S}", f"hold_sigma = {FLOW_HOLD_SIGMA}"] if hold else []), "",
             "[flow.dip]", "threshold = 0.02", f"rate_per_s = {FLOW_RATES['dip']}", "max_multiple = 4.0", "",
             "[flow.momentum]", "threshold = 0.005", "window_s = 60.0", f"rate_per_s = {FLOW_RATES['momentum']}",
             "max_multiple = 4.0", "",
             "[flow.squeeze]", "threshold = 0.01", "after_fall = 0.03", f"rate_per_s = {FLOW_RATES['squeeze']}",
             "max_multiple = 4.0", ""]  # fmt: skip
    btc = OPEN_INTEREST["binance"]["BTC"]
    sol = OPEN_INTEREST["binance"]["SOL"]
    for venue, syms in MARKETS.items():
        for asset, sym in syms.items():
            oi = OPEN_INTEREST[venue][asset]
            multiple = oi / sol * FLOW_SOL_OVER_BTC if asset == "SOL" else oi / btc
            lines += [f'[flow.markets."{venue}:{sym}"]', f"rate_multiple = {multiple:.4g}",
                      f"accounts = {max(1000, round(FLOW_POOL_BINANCE_BTC * multiple))}", ""]  # fmt: skip
    for source, target in HEDGE_PAIRS:
        for asset in ("BTC", "ETH", "SOL"):
            capital = max(OPEN_INTEREST[source][asset] * 0.06 / 3, 200_000)
            lines += ["[[makers.hedges]]", f'market = "{source}:{MARKETS[source][asset]}"',
                      f'hedge = "{target}:{MARKETS[target][asset]}"', f"capital_usd = {capital:.4g}",
                      "max_leverage = 10.0", "band_usd = 1_000_000.0", "clip_usd = 20_000_000.0",
                      "rehedge_after_s = 60.0", ""]  # fmt: skip
    return lines


def wider_market_variant(lines: list[str]) -> list[str]:
    """The scenario with the permanent part of impact carried by the wider market (``[wider_market]``), not by each
    maker's quotes, and every spot book quoting around the fundamental value (the loop between spot books and
    perpetuals cut). The same propagator as the makers' rule: a flow spread over a market's three makers skews them
    by ``WALK_SPAN / DEPTH_RATIO`` per unit of open interest (a flow of the whole calm 1 % depth moves the price
    1 %), so the wider market takes ``SKEW_PERMANENT`` of that for good and the makers' skew keeps the rest,
    ``1 - SKEW_PERMANENT`` of it, fading with the half-life (``inventory_skew_permanent = 0``). Tried, not the
    built-in scenario: docs/validation.md."""
    kappa = WALK_SPAN / DEPTH_RATIO["major"]
    out = []
    for line in lines:
        if line == "[shock]":
            out += ["[wider_market]", f"impact_per_open_interest = {kappa:.4g}  # WALK_SPAN / DEPTH_RATIO"]
            out += [f"permanent = {SKEW_PERMANENT}  # calm alts' impact propagator (derive_oct2025.py)", ""]
        if line.startswith("inventory_skew_bps = "):
            bps = MAKER_INVENTORY_SHARE / (DEPTH_RATIO["major"] / 3) * WALK_SPAN * 1e4 * (1 - SKEW_PERMANENT)
            line = f"inventory_skew_bps = {bps:.0f}  # the transient share of the rule's skew (make_oct2025.py)"
        elif line.startswith("lay_off = "):  # the variant as measured: the skew fades, the inventory stays
            line = "inventory_skew_permanent = 0.0  # the permanent share is the wider market's"
        elif line == 'name = "oct-2025"':
            line = 'name = "oct-2025-wider-market"'
        elif line == 'spot_fair_value = "perpetual_mark"':
            line = 'spot_fair_value = "fundamental"'
        out.append(line)
    return out


def main() -> None:
    lines = [
        '# Built-in scenario "oct-2025": the October 10-11, 2025 crash. GENERATED by scripts/make_oct2025.py, which',
        "# names the source of every calibration figure; edit the script, not this file.",
        f"# Five venues (Binance, OKX, Bybit, Bitget, Hyperliquid), {N_PERPS} perpetuals: the six majors and the alts",
        "# each venue listed, with its own margin tables; open interest from public pre-crash figures (~$220B",
        "# market-wide, 41.5 % outside the six majors), entries along the preceding ten days' path, shares of",
        "# Binance's cross accounts margined in USDe, wBETH and BNSOL priced off its own thin books (its rules before",
        "# the Oct 14 fix). The shock is sized from outside crypto (BTC's beta to the S&P 500 times its Oct 10 fall);",
        "# the rest of the fall has to come out of the books, liquidation engines and ADL.",
        'name = "oct-2025"',
        f'description = "October 10-11, 2025: five venues, {N_PERPS} perpetuals, a crowded long book meets the '
        'tariff news"',
        "seed = 2025",
        "start = 2025-10-10T20:30:00Z",
        "duration_s = 12_600",
        "step_ms = 1000",
        "",
    ]
    collateral = binance_collateral_lines()
    for venue, syms in MARKETS.items():
        lines += [f"[venues.{venue}]", f'preset = "{venue}"', f"symbols = {list(syms.values())!r}".replace("'", '"')]
        own = {"binance": ["BTC/USDT", *collateral["spot_symbols"]]}.get(venue, [])
        if venue in CEX:
            pairs = own + [f"{b}/USDT" for b in SPOT_ALTS[venue]]
            lines.append(f"spot_symbols = {pairs!r}".replace("'", '"'))
        if venue == "binance":
            lines += ["insurance_fund.initial_usd = 1_230_000_000.0  # ~$1.23B on Oct 10 (research notes, 2nd)"]
        if venue == "hyperliquid":
            lines += ["insurance_fund.initial_usd = 300_000_000.0  # HLP liquidator share, ~$300M (2nd, assumed)"]
        lines.append("")
        if venue in CEX:
            lines.append(f"[venues.{venue}.index.constituents_by_asset]")
            for b in SPOT_ALTS[venue]:
                sources = {v: 1.0 for v in CEX if b in SPOT_ALTS[v]} | {"gate": 1.0}
                table = ", ".join(f"{k} = {w}" for k, w in sources.items())
                lines.append(f'"{b}" = {{ {table} }}')
            lines.append("")
    lines += ["[shock]", 'kind = "jump_regime"', f"calm_vol = {CALM_VOL}  # BTC 20:30-20:50 (derive script)",
              f"at_s = {NEWS_AT_S}  # 20:50 UTC, the tariff post reaches BTCUSDT (derive)",
              f"jump = {JUMP:.5f}  # BTC's beta to the S&P 500 x its Oct 10 fall, the first post's quick share",
              f"jump_s = {JUMP_S}  # as BTC took the first post (make_oct2025.py)",
              f"stress_vol = {STRESS_VOL:.7f}  # the calm vol x the VIX's rise on Oct 10", "half_life_s = 900",
              f"drift = {DRIFT:.5f}", f"drift_s = {DRIFT_S}",
              f"appetite_floor = {APPETITE_FLOOR:.3f}  # 1 / the VIX's rise", "appetite_half_life_s = 3600",
              ""]  # fmt: skip
    bases = list(dict.fromkeys(b for v in MARKETS.values() for b in v))
    for asset in bases:
        lines += [f"[shock.assets.{asset}]", f"start_price = {START_PRICE[asset]}", f"beta = {beta(asset)}"]
        if asset not in MAJORS:
            lines.append(f"idio_vol = {ALT_IDIO}")
        lines.append("")
    lines += collateral["shock_assets"]
    lines += ["[crowd]", "topup_margin_ratio = 0.8", "", *collateral["crowd_collateral"],
              "[crowd.collateral.bybit]",
              "USDE = 0.03  # Bybit accepts USDe too, valued on an index (assumed, UNCONFIRMED)", ""]  # fmt: skip
    lines += ["[population]", "accounts = 2_000_000  # crowd accounts at scale 1 (~1.6M were liquidated, 2nd)",
              "leverage_median = 7.0", "leverage_sigma = 0.5", "leverage_size_elasticity = 0.35",
              "crowded_long_share = 0.3",
              "crowded_leverage_median = 40.0", "entry_dispersion = 0.004",
              f"entry_path = {ENTRY_PATH}",
              'survivors = "chosen_leverage"  # what the path left near liquidation was topped up (make_oct2025.py)',
              ""]  # fmt: skip
    lines += ["[population.beta_to_path]"] + [f"{a} = {beta(a)}" for a in bases] + [""]
    for venue, syms in MARKETS.items():
        for asset, sym in syms.items():
            oi = OPEN_INTEREST[venue][asset]
            lines += [f'[population.markets."{venue}:{sym}"]', f"open_interest_usd = {oi:.4g}",
                      "crowd_short_share = 0.85", "long_short_account_ratio = 2.5" if tier(asset) == "major" else
                      "long_short_account_ratio = 3.0", ""]  # fmt: skip
    lines += ["[makers]", "per_market = 3", "capital_usd = 1_000_000_000.0", "levels = 25", "half_spread_bps = 0.5",
              "level_spacing_bps = 4.0", f"depth_usd = {BINANCE_BTC_DEPTH_1PCT / 3:.4g}",
              "inventory_limit_usd = 10_000_000_000.0", "loss_limit_usd = 400_000_000.0", "vol_ref = 0.00006",
              "withdraw_vol_multiple = 100.0", "return_vol_multiple = 30.0", "adl_exposure_limit = 0.9",
              "size_vol_elasticity = 0.2", "spread_vol_elasticity = 0.1",
              f"inventory_skew_bps = {MAKER_INVENTORY_SHARE / (DEPTH_RATIO['major'] / 3) * WALK_SPAN * 1e4:.0f}"
              "  # a maker at its limit quotes where its walked calm ladder would be (make_oct2025.py)",
              "lay_off = true  # inventory laid off outside at the calm propagator's half-life (make_oct2025.py)",
              f"inventory_skew_half_life_s = {SKEW_HALF_LIFE_S}.0", "requote_bps = 1.0", ""]  # fmt: skip
    for venue, syms in MARKETS.items():
        for asset, sym in syms.items():
            oi = OPEN_INTEREST[venue][asset]
            depth = oi * DEPTH_RATIO[tier(asset)] / 3
            lines += [f'[makers.markets."{venue}:{sym}"]', f"depth_usd = {depth:.4g}",
                      f"capital_usd = {max(oi * 0.06 / 3, 200_000):.4g}",
                      f"inventory_limit_usd = {max(oi * MAKER_INVENTORY_SHARE, 500_000):.4g}",
                      f"loss_limit_usd = {max(oi * 0.03 / 3, 50_000):.4g}", ""]  # fmt: skip
    for venue in CEX:
        for b in SPOT_ALTS[venue]:
            oi = OPEN_INTEREST[venue][b]
            depth = oi * DEPTH_RATIO[tier(b)] / 3 * SPOT_DEPTH_SHARE
            lines += [f'[makers.markets."{venue}:{b}/USDT"]', f"depth_usd = {depth:.4g}",
                      f"capital_usd = {max(depth * 2, 50_000):.4g}",
                      f"inventory_limit_usd = {max(depth, 20_000):.4g}",
                      f"loss_limit_usd = {max(depth * 0.2, 5_000):.4g}", 'spot_fair_value = "perpetual_mark"',
                      ""]  # fmt: skip
    lines += ['[makers.markets."binance:BTC/USDT"]', "depth_usd = 60_000_000.0", "", *collateral["makers"]]
    lines += ["[takers]", f"rate_per_s = {TAKER_RATE}", "median_usd = 20_000.0", "sell_bias_after_shock = 0.15", "",
              *collateral["takers"]]  # fmt: skip
    # Noise flow per market scales with the square root of its open interest against Binance BTC's (ASSUMED), so
    # a thin market is not traded like BTC.
    for venue, syms in MARKETS.items():
        for asset, sym in syms.items():
            size = min(1.0, math.sqrt(OPEN_INTEREST[venue][asset] / BINANCE_ROWS["BTC"]))
            lines += [f'[takers.markets."{venue}:{sym}"]', f"rate_per_s = {max(0.05, 0.5 * size):.3g}",
                      f"median_usd = {max(500.0, 20_000.0 * size):.4g}", ""]  # fmt: skip
    for venue in CEX:
        for b in SPOT_ALTS[venue]:
            size = min(1.0, math.sqrt(OPEN_INTEREST[venue][b] * SPOT_DEPTH_SHARE / BINANCE_ROWS["BTC"]))
            lines += [f'[takers.markets."{venue}:{b}/USDT"]', f"rate_per_s = {max(0.05, 0.5 * size):.3g}",
                      f"median_usd = {max(200.0, 20_000.0 * size):.4g}", ""]  # fmt: skip
    lines += ["[engine]", "fund_unwind_fraction = 0.02", ""]
    out = Path(__file__).resolve().parents[1] / "src/perpstress/presets/scenarios/oct-2025.toml"
    flag = sys.argv[1] if len(sys.argv) > 1 else None
    if flag is not None:
        out = Path(sys.argv[2])
    if flag == "--crowd-flow":  # a copy with the crowd's flow and the makers' hedges on, at the path given
        lines += crowd_flow_lines()
    elif flag == "--flow-hold":  # the same, its flow positions closed after their holding time
        lines += crowd_flow_lines(hold=True)
    if flag == "--wider-market":
        lines = wider_market_variant(lines)
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and (args[0] in ("-h", "--help") or len(args) != 2
                 or args[0] not in ("--crowd-flow", "--flow-hold", "--wider-market")):  # fmt: skip
        print(__doc__)
        sys.exit(0 if args[0] in ("-h", "--help") else 2)
    main()
