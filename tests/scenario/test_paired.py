"""Policy runs on common random numbers (issue 14): two runs of one seed that differ only in Binance's ADL rule are
identical, step for step, until the first ADL, and over several seeds the paired interval of a difference between
the two rules is narrower than the unpaired one.

The scenario is the quickstart cut to 60 simulated seconds in steps of 250 ms, the shock at 20 s, a tenth of the
crowd; a run takes about a second. Binance's first ADL comes with the shock, 80 steps in. (Hyperliquid, whose rule
is the same in both runs, already deleverages one account at step 0; that ADL is identical in both runs, as the
test checks: only the venue whose rule differs can make the runs part.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from perpstress import Scenario
from perpstress.outputs.run import run_scenario
from perpstress.stats import paired_difference
from perpstress.sweep import parse_grid, plan_sweep, run_sweep
from perpstress.sweep.cells import paired_against, seed_values

BASE = Scenario.load("quickstart").with_(name="paired", duration_s=60, step_ms=250, shock__at_s=20, shock__drift_s=20)
SCALE = 0.1
QUEUE = BASE  # the Binance preset's rule: a ranked queue (leverage x PnL), at the bankruptcy price
PRO_RATA = BASE.with_(venues__binance__adl={"rule": "capped_pro_rata", "max_haircut": 0.5})


def _differing_ts(a: pa.Table, b: pa.Table) -> np.ndarray:
    """``ts_ms`` of the time-series rows where any column differs between the two runs (NaN equals NaN)."""
    assert a.num_rows == b.num_rows
    for key in ("ts_ms", "venue", "market"):
        assert a.column(key).equals(b.column(key)), key  # the same steps and markets, row for row
    ts = a.column("ts_ms").to_numpy()
    differs = np.zeros(a.num_rows, dtype=bool)
    assert a.column_names == b.column_names
    for name in a.column_names:
        if name in ("ts_ms", "venue", "market"):
            continue
        x, y = a.column(name).to_numpy(), b.column(name).to_numpy()
        differs |= ~((x == y) | (np.isnan(x) & np.isnan(y)))
    return np.asarray(ts[differs])


def _first_ts(events: pa.Table, venue: str) -> int:
    return int(np.min(events.filter(pc.equal(events.column("venue"), venue)).column("ts_ms").to_numpy()))


@pytest.fixture(scope="module")
def two_rules(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("paired")
    a = run_scenario(QUEUE, root / "queue", scale=SCALE).path
    b = run_scenario(PRO_RATA, root / "pro-rata", scale=SCALE).path
    assert a is not None
    assert b is not None
    return a, b


def test_an_adl_rule_changes_nothing_before_the_first_adl(two_rules: tuple[Path, Path]) -> None:
    a, b = two_rules
    ts_a, ts_b = pq.read_table(a / "timeseries.parquet"), pq.read_table(b / "timeseries.parquet")
    adl_a, adl_b = pq.read_table(a / "events" / "adl.parquet"), pq.read_table(b / "events" / "adl.parquet")
    assert adl_a.num_rows > 0
    assert adl_b.num_rows > 0
    first_adl = min(_first_ts(adl_a, "binance"), _first_ts(adl_b, "binance"))  # the venue whose rule differs
    start = int(ts_a.column("ts_ms").to_numpy()[0])
    steps_before = (first_adl - start) // BASE.step_ms
    assert steps_before >= 40  # a real stretch of identical steps: the shock at 20 s, the first ADL after it
    differing = _differing_ts(ts_a, ts_b)
    assert differing.size > 0  # the rules do differ once ADL runs...
    assert int(differing.min()) >= first_adl  # ...and not one step before the first ADL
    # Everything that happened before the first ADL is the same, event for event: the liquidations too.
    liq_a, liq_b = (
        pq.read_table(a / "events" / "liquidations.parquet"),
        pq.read_table(b / "events" / "liquidations.parquet"),
    )
    for table_a, table_b in ((liq_a, liq_b), (adl_a, adl_b)):
        before_a = table_a.filter(pc.less(table_a.column("ts_ms"), first_adl))
        before_b = table_b.filter(pc.less(table_b.column("ts_ms"), first_adl))
        assert before_a.num_rows > 0
        assert before_a.equals(before_b)
    # The queue and pro-rata close different accounts in different amounts, from the first ADL on.
    first = [t.filter(pc.equal(t.column("ts_ms"), first_adl)) for t in (adl_a, adl_b)]
    assert first[0].num_rows != first[1].num_rows or not first[0].equals(first[1])


def test_over_eight_seeds_the_paired_interval_is_narrower_than_the_unpaired(tmp_path: Path) -> None:
    queue = {"rule": "ranked_queue", "ranking": "binance_leverage_pnl", "price": "bankruptcy"}  # the preset's
    grid = parse_grid({"grid": {"venues.binance.adl": [queue, {"rule": "capped_pro_rata", "max_haircut": 0.5}]}}, "g")
    tiny = BASE.with_(duration_s=40, step_ms=1000, shock__at_s=5)
    result = run_sweep(plan_sweep(tiny, grid, 8, scale=SCALE), tmp_path / "sweep", executor="serial",
                       summaries_only=True, report=False)  # fmt: skip
    assert result.executed == 16
    a, b = seed_values(result.results, "adl_usd", 0), seed_values(result.results, "adl_usd", 1)
    assert len(set(a.values())) == 8  # the seeds do differ from one another
    d = paired_difference(a, b)
    assert d == paired_against(result.results, "adl_usd", 1, 0)
    assert d.pairs == 8
    assert d.paired_low <= d.mean <= d.paired_high
    assert d.unpaired_low <= d.mean <= d.unpaired_high
    assert d.paired_width < d.unpaired_width
    # The seed-to-seed spread both rules share (the shock's size) is far larger than the rules' difference on a seed.
    assert np.std(list(a.values())) > 5 * np.std(d.differences)
    cells = result.cells.to_pydict()
    assert cells["adl_usd_diff_ci95_low"][1] == d.paired_low
    assert cells["adl_usd_diff_unpaired_ci95_high"][1] == d.unpaired_high
