"""Write the built-in ``oct-2025`` scenario from its calibration figures (each named with its source below).

Run: ``python scripts/make_oct2025.py`` (writes src/perpstress/presets/scenarios/oct-2025.toml; with
``--crowd-flow PATH``, a copy with the crowd's flow on to PATH). Edit the figures
here, not the TOML, so the arithmetic from aggregates to per-market numbers stays visible.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Open interest across the market on 2025-10-07: ~$235.9B (issue 5's seed figure; CoinGlass via news, 2nd).
TOTAL_OI = 235.9e9
# 2025 derivatives volume by venue (issue 5 seed figures, 2nd): Binance $25.9T, OKX $10.76T, Bybit $9.43T,
# Bitget $8.17T of $85.7T. Open interest is assumed to split like volume. Hyperliquid: ~$15B open interest in early
# October 2025 (2nd, news reports of HL OI; UNCONFIRMED exact figure).
VOLUME_SHARE = {"binance": 25.9 / 85.7, "okx": 10.76 / 85.7, "bybit": 9.43 / 85.7, "bitget": 8.17 / 85.7}
VENUE_OI = {v: TOTAL_OI * s for v, s in VOLUME_SHARE.items()} | {"hyperliquid": 15e9}
# Split of a venue's open interest by asset (assumed, UNCONFIRMED: BTC ~40 %, ETH ~25 %, SOL ~7 % of the
# market's OI in October 2025 per aggregator dashboards; the rest are other alts not simulated). The long-tail
# market of each venue holds a thin slice.
ASSET_SHARE = {"BTC": 0.40, "ETH": 0.25, "SOL": 0.07}
TAIL_SHARE = 0.0005
MARKETS = {
    "binance": {"BTC": "BTCUSDT", "ETH": "ETHUSDT", "SOL": "SOLUSDT", "TAIL": "HIVEUSDT"},
    "okx": {"BTC": "BTC-USDT-SWAP", "ETH": "ETH-USDT-SWAP", "SOL": "SOL-USDT-SWAP", "TAIL": "ACE-USDT-SWAP"},
    "bybit": {"BTC": "BTCUSDT", "ETH": "ETHUSDT", "SOL": "SOLUSDT", "TAIL": "NEIROETHUSDT"},
    "bitget": {"BTC": "BTCUSDT", "ETH": "ETHUSDT", "SOL": "SOLUSDT", "TAIL": "SUPERUSDT"},
    "hyperliquid": {"BTC": "BTC", "ETH": "ETH", "SOL": "SOL", "TAIL": "DOGE"},
}
TAIL_BASE = {"binance": "HIVE", "okx": "ACE", "bybit": "NEIROETH", "bitget": "SUPER", "hyperliquid": "DOGE"}
# Pre-crash BTCUSDT ask depth within 1 % on Binance: $374M at 20:30 (scripts/derive_oct2025.py on
# shared/data/binance/BTCUSDT-bookDepth-2025-10-10.csv). Other books scale with open interest (assumed).
BINANCE_BTC_DEPTH_1PCT = 374e6
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
START_PRICE = {"BTC": 116_863.4, "ETH": 4_380.0, "SOL": 207.06, "HIVE": 0.25, "ACE": 0.45, "NEIROETH": 0.06,
               "SUPER": 0.55, "DOGE": 0.25, "USDE": 1.0}  # fmt: skip
# BTC 20:30 mark (derive script); SOL 20:30 close 207.06 (SOLUSDT 1m file); others approximate levels of the day
# (UNCONFIRMED, they only set units).
BETA = {"BTC": 1.0, "ETH": 1.25, "SOL": 1.5, "HIVE": 3.0, "ACE": 3.0, "NEIROETH": 3.0, "SUPER": 2.5, "DOGE": 2.0}
IDIO = {"HIVE": 0.0008, "ACE": 0.0008, "NEIROETH": 0.0009, "SUPER": 0.0007, "DOGE": 0.0003}
# Long-tail calm vol: NEAR/FIL in September: 1.45e-4 / 1.26e-4 per sqrt(s) (derive script); BTC 20:30-20:50:
# 5.6e-5.


# The crowd's flow during the crash (issue 15, item 4), from scripts/derive_crowd_flow.py on the BTCUSDT and
# SOLUSDT 1-minute klines (taker buy / sell volume, 20:30-23:00): rates at each rule's threshold for Binance
# BTCUSDT, orders per second at scale 1, with 25 % of the excess taker volume assumed to open new positions
# (UNCONFIRMED: no open-interest series). Other markets scale by open interest against Binance BTCUSDT (ETH and the
# long tail assumed to behave like BTC, UNCONFIRMED); SOL markets by open interest against Binance SOLUSDT times
# SOL's measured rates over BTC's (0.095-0.19, their mean 0.13). Pools: the orders the rates open over the real BTC
# path (81,864 at Binance BTCUSDT), twice over, in proportion; at least 1,000.
FLOW_RATES = {"dip": 5.2, "momentum": 17.8, "squeeze": 2.7}
FLOW_SOL_OVER_BTC = 0.13
FLOW_POOL_BINANCE_BTC = 163_728


# Makers hedging across venues (ASSUMED, UNCONFIRMED: no public figure of market makers' cross-venue hedges that
# night): the majors' makers on Binance hedge all their inventory in the same asset on Bybit, and Bybit's on Binance
# (the "long on one venue, short on another" books that ADL broke); each hedge account holds one maker's capital
# (the [makers.markets] capital above) at up to 10x, rehedges within $1M, waits 60 s after a forced close.
HEDGE_PAIRS = [("binance", "bybit"), ("bybit", "binance")]


def crowd_flow_lines() -> list[str]:
    """The ``[flow]`` section and the makers' cross-venue hedges of oct-2025 (off in the built-in file;
    ``--crowd-flow PATH`` writes a copy with them)."""
    lines = ["[flow]", "recent_window_s = 1800.0", "median_usd = 20_000.0", "sigma = 1.0", "",
             "[flow.dip]", "threshold = 0.02", f"rate_per_s = {FLOW_RATES['dip']}", "max_multiple = 4.0", "",
             "[flow.momentum]", "threshold = 0.005", "window_s = 60.0", f"rate_per_s = {FLOW_RATES['momentum']}",
             "max_multiple = 4.0", "",
             "[flow.squeeze]", "threshold = 0.01", "after_fall = 0.03", f"rate_per_s = {FLOW_RATES['squeeze']}",
             "max_multiple = 4.0", ""]  # fmt: skip
    btc = VENUE_OI["binance"] * ASSET_SHARE["BTC"]
    sol = VENUE_OI["binance"] * ASSET_SHARE["SOL"]
    for venue, syms in MARKETS.items():
        for asset, sym in syms.items():
            oi = VENUE_OI[venue] * (TAIL_SHARE if asset == "TAIL" else ASSET_SHARE[asset])
            multiple = oi / sol * FLOW_SOL_OVER_BTC if asset == "SOL" else oi / btc
            lines += [f'[flow.markets."{venue}:{sym}"]', f"rate_multiple = {multiple:.4g}",
                      f"accounts = {max(1000, round(FLOW_POOL_BINANCE_BTC * multiple))}", ""]  # fmt: skip
    for source, target in HEDGE_PAIRS:
        for asset in ("BTC", "ETH", "SOL"):
            capital = max(VENUE_OI[source] * ASSET_SHARE[asset] * 0.06 / 3, 200_000)
            lines += ["[[makers.hedges]]", f'market = "{source}:{MARKETS[source][asset]}"',
                      f'hedge = "{target}:{MARKETS[target][asset]}"', f"capital_usd = {capital:.4g}",
                      "max_leverage = 10.0", "band_usd = 1_000_000.0", "clip_usd = 20_000_000.0",
                      "rehedge_after_s = 60.0", ""]  # fmt: skip
    return lines


def main() -> None:
    lines = [
        '# Built-in scenario "oct-2025": the October 10-11, 2025 crash. GENERATED by scripts/make_oct2025.py, which',
        "# names the source of every calibration figure; edit the script, not this file.",
        "# Five venues (Binance, OKX, Bybit, Bitget, Hyperliquid), BTC, ETH, SOL and one thin long-tail perpetual on",
        "# each (20 markets), a crowd built from open interest (~$235.9B market-wide on Oct 7, split by 2025 volume",
        "# shares), entries along the preceding ten days' path, a USDe collateral share on Binance priced off its own",
        "# book (its rule before the Oct 14 fix). The shock is the news at 21:00 UTC (fundamental value and risk",
        "# appetite); the cascade comes out of the books, liquidation engines and ADL.",
        'name = "oct-2025"',
        'description = "October 10-11, 2025: five venues, 20 perpetuals, a crowded long book meets the tariff news"',
        "seed = 2025",
        "start = 2025-10-10T20:30:00Z",
        "duration_s = 12_600",
        "step_ms = 1000",
        "",
    ]
    for venue, syms in MARKETS.items():
        lines += [f"[venues.{venue}]", f'preset = "{venue}"', f"symbols = {list(syms.values())!r}".replace("'", '"')]
        if venue == "binance":
            lines += [
                'spot_symbols = ["BTC/USDT", "USDE/USDT"]',
                "insurance_fund.initial_usd = 1_230_000_000.0  # ~$1.23B on Oct 10 (research notes, 2nd)",
            ]
        if venue == "hyperliquid":
            lines += ["insurance_fund.initial_usd = 300_000_000.0  # HLP liquidator share, ~$300M (2nd, assumed)"]
        lines.append("")
    lines += ["[shock]", 'kind = "jump_regime"', "calm_vol = 0.000056  # BTC 20:30-20:50 (derive script)",
              "at_s = 1800  # 21:00 UTC, the tariff post", "jump = -0.025", "stress_vol = 0.0012",
              "half_life_s = 900", "drift = -0.075", "drift_s = 1200",
              "appetite_floor = 0.5", "appetite_half_life_s = 3600", ""]  # fmt: skip
    for asset, price in START_PRICE.items():
        lines += [f"[shock.assets.{asset}]", f"start_price = {price}", f"beta = {BETA.get(asset, 0.0)}"]
        if asset in IDIO:
            lines.append(f"idio_vol = {IDIO[asset]}")
        lines.append("")
    lines += ["[crowd]", "topup_margin_ratio = 0.8", "", "[crowd.collateral.binance]",
              "USDE = 0.05  # share of Binance cross accounts margined in USDe (assumed, UNCONFIRMED)", "",
              "[crowd.collateral.bybit]",
              "USDE = 0.03  # Bybit accepts USDe too, valued on an index (assumed, UNCONFIRMED)", ""]  # fmt: skip
    lines += ["[population]", "accounts = 2_000_000  # crowd accounts at scale 1 (~1.6M were liquidated, 2nd)",
              "leverage_median = 7.0", "leverage_sigma = 0.5", "leverage_size_elasticity = 0.35",
              "crowded_long_share = 0.3",
              "crowded_leverage_median = 40.0", "entry_dispersion = 0.004",
              f"entry_path = {ENTRY_PATH}", ""]  # fmt: skip
    lines += ["[population.beta_to_path]"] + [f"{a} = {b}" for a, b in BETA.items()] + [""]
    for venue, syms in MARKETS.items():
        for asset, sym in syms.items():
            share = TAIL_SHARE if asset == "TAIL" else ASSET_SHARE[asset]
            oi = VENUE_OI[venue] * share
            lines += [f'[population.markets."{venue}:{sym}"]', f"open_interest_usd = {oi:.4g}",
                      "crowd_short_share = 0.85", "long_short_account_ratio = 2.5" if asset != "TAIL" else
                      "long_short_account_ratio = 3.0", ""]  # fmt: skip
    lines += ["[makers]", "per_market = 3", "capital_usd = 1_000_000_000.0", "levels = 25", "half_spread_bps = 0.5",
              "level_spacing_bps = 4.0", f"depth_usd = {BINANCE_BTC_DEPTH_1PCT / 3:.4g}",
              "inventory_limit_usd = 10_000_000_000.0", "loss_limit_usd = 400_000_000.0", "vol_ref = 0.00006",
              "withdraw_vol_multiple = 100.0", "return_vol_multiple = 30.0", "adl_exposure_limit = 0.9",
              "size_vol_elasticity = 0.2", "spread_vol_elasticity = 0.1",
              "requote_bps = 1.0", ""]  # fmt: skip
    for venue, syms in MARKETS.items():
        for asset, sym in syms.items():
            share = TAIL_SHARE if asset == "TAIL" else ASSET_SHARE[asset]
            ratio = VENUE_OI[venue] * share / (VENUE_OI["binance"] * ASSET_SHARE["BTC"])
            depth = BINANCE_BTC_DEPTH_1PCT / 3 * ratio
            oi = VENUE_OI[venue] * share
            lines += [f'[makers.markets."{venue}:{sym}"]', f"depth_usd = {depth:.4g}",
                      f"capital_usd = {max(oi * 0.06 / 3, 200_000):.4g}",
                      f"inventory_limit_usd = {max(oi * 0.3 / 3, 500_000):.4g}",
                      f"loss_limit_usd = {max(oi * 0.03 / 3, 50_000):.4g}", ""]  # fmt: skip
    lines += ['[makers.markets."binance:BTC/USDT"]', "depth_usd = 60_000_000.0", "",
              '[makers.markets."binance:USDE/USDT"]', "capital_usd = 20_000_000.0", "depth_usd = 700_000.0",
              "size_vol_elasticity = 1.0", "spread_vol_elasticity = 0.5",
              "inventory_limit_usd = 3_000_000.0", "loss_limit_usd = 600_000.0", ""]  # fmt: skip
    lines += ["[takers]", "rate_per_s = 0.5", "median_usd = 20_000.0", "sell_bias_after_shock = 0.15", "",
              '[takers.markets."binance:USDE/USDT"]', "rate_per_s = 3.0", "median_usd = 150_000.0",
              "sell_bias_after_shock = 0.45", ""]  # fmt: skip
    lines += ["[engine]", "fund_unwind_fraction = 0.02", ""]
    out = Path(__file__).resolve().parents[1] / "src/perpstress/presets/scenarios/oct-2025.toml"
    if sys.argv[1:2] == ["--crowd-flow"]:  # a copy with the crowd's flow on, at the path given
        out = Path(sys.argv[2])
        lines += crowd_flow_lines()
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
