# %% [markdown]
# # perpstress from Python: run, load, query
#
# A notebook as a script (VS Code and Jupytext open the `# %%` cells as a notebook). It runs the built-in
# `quickstart` scenario, cut to three simulated minutes and a fifth of its crowd, twice: Binance's insurance fund
# at $2M (the scenario's) and at $20M. Then it loads a run back from disk, reads its tables as pandas and Polars
# frames, and asks DuckDB one question across both runs. Every number it prints is also checked: the script
# fails (exit code 1) if a table and the summary disagree.
#
#     python examples/notebook_quickstart.py [--out DIR]
#
# Needs the `frames` and `query` extras (`pip install "perpstress[frames,query]"`). About ten seconds.

# %%
from __future__ import annotations

import argparse
import atexit
import math
import shutil
import tempfile
from pathlib import Path

import perpstress

parser = argparse.ArgumentParser(description="run, load and query two short quickstart runs")
parser.add_argument("--out", type=Path, default=None, help="keep the run directories here (default: a temp dir)")
args = parser.parse_args()
keep = args.out is not None
out: Path = args.out if keep else Path(tempfile.mkdtemp(prefix="perpstress-notebook-"))
if not keep:
    atexit.register(shutil.rmtree, out, ignore_errors=True)  # removed however the script ends

# %% [markdown]
# ## Two runs that differ in one rule
#
# `Scenario.with_` changes any field by its path (`a__b__c` is `a.b.c`) and validates the result like a file.

# %%
base = perpstress.Scenario.load("quickstart").with_(duration_s=180)
runs = {}
for fund_usd in (2e6, 2e7):
    scenario = base.with_(venues__binance__insurance_fund__initial_usd=fund_usd)
    runs[fund_usd] = perpstress.run(scenario, scale=0.2, out=out / f"binance-fund-{fund_usd / 1e6:g}m", overwrite=True)

for fund_usd, run in runs.items():
    h = run.headline()
    print(
        f"Binance fund ${fund_usd / 1e6:g}M: liquidated ${h['liquidated_usd'] / 1e6:,.1f}M "
        f"({h['long_share']:.0%} longs), ADL ${h['adl_usd'] / 1e6:,.1f}M "
        f"(Binance ${h['adl_usd_binance'] / 1e6:,.1f}M), Binance fund drawdown "
        f"${h['fund_drawdown_usd_binance'] / 1e6:,.2f}M, worst drawdown {h['worst_drawdown_market']} "
        f"{h['worst_price_drawdown']:.1%}"
    )

# %% [markdown]
# ## Load a run back and read its tables
#
# `perpstress.load` opens a run directory written earlier, by `perpstress run` or by `perpstress.run(out=...)`.

# %%
run = perpstress.load(out / "binance-fund-2m")
liquidations = run.liquidations  # pandas
summary = run.summary["liquidations"]

# The liquidated notional in the summary is the sum of the liquidations table ...
assert math.isclose(liquidations["notional_usd"].sum(), summary["notional_usd"], rel_tol=1e-9)
assert len(liquidations) == summary["count"]
# ... and the longs' share is the long side's share of that notional.
long_share = liquidations.loc[liquidations["side"] > 0, "notional_usd"].sum() / liquidations["notional_usd"].sum()
headline = run.headline()
assert headline["long_share"] is not None
assert math.isclose(long_share, float(headline["long_share"]), rel_tol=1e-9)
print(f"liquidations table: {len(liquidations):,} rows, {long_share:.1%} of the notional long, as the summary says")

# By venue and minute, as a risk desk would look at it:
per_minute = (
    liquidations.assign(minute=(liquidations["ts_ms"] // 60_000 - liquidations["ts_ms"].min() // 60_000))
    .groupby(["venue", "minute"])["notional_usd"]
    .sum()
    .unstack("venue", fill_value=0.0)
)
print((per_minute / 1e6).round(1).to_string())
assert math.isclose(per_minute.to_numpy().sum(), summary["notional_usd"], rel_tol=1e-9)

# The same table in Polars; the insurance fund path from the time series.
adl = run.polars.adl
assert adl.height == run.summary["adl"]["count"]
fund_path = run.timeseries.query("venue == 'binance'").groupby("ts_ms")["insurance_fund_usd"].first()
assert math.isclose(fund_path.iloc[-1], run.summary["insurance_funds"]["binance"]["end_usd"], rel_tol=1e-9)
fund = run.summary["insurance_funds"]["binance"]
assert fund["start_usd"] == run.scenario.venues["binance"].insurance_fund.initial_usd == 2e6
assert math.isclose(min(fund_path.min(), fund["start_usd"]), fund["min_usd"], rel_tol=1e-9)
print(f"Binance fund: ${fund['start_usd']:,.0f} -> ${fund_path.iloc[-1]:,.0f} (lowest ${fund_path.min():,.0f})")

# %% [markdown]
# ## One question across both runs, in SQL
#
# `perpstress.query(DIR, SQL)` (or `perpstress query DIR "SQL"` in a shell) sees every run under DIR: `runs` has
# one row per run with its headline numbers; `liquidations`, `adl`, `timeseries`, ... hold every run's rows with
# a `run_id` column.

# %%
by_venue = perpstress.query(
    out,
    """
    SELECT r.fund_start_usd_binance AS binance_fund, a.venue, count(*) AS fills, sum(a.notional_usd) AS adl_usd
    FROM adl a JOIN runs r USING (run_id)
    GROUP BY ALL ORDER BY binance_fund, a.venue
    """,
)
print(by_venue.to_string(index=False, float_format=lambda x: f"{x:,.0f}"))
for fund_usd, made in runs.items():
    rows = by_venue[by_venue["binance_fund"] == fund_usd]
    got = dict(zip(rows["venue"], rows["adl_usd"], strict=True))
    expected = made.summary["adl"]["by_venue"]
    assert got.keys() == expected.keys(), (got, expected)
    assert all(math.isclose(got[v], expected[v], rel_tol=1e-9) for v in expected)
print("checks passed: tables, summaries and SQL agree")
