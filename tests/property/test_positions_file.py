"""Any valid snapshot loads whole, with exact totals, from CSV and from Parquet (Hypothesis)."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st

from perpstress.config.scenario import Scenario
from perpstress.population.positions_file import REQUIRED_COLUMNS, load_positions
from perpstress.rules.margin import max_leverage

SCENARIO = Scenario.load("quickstart")
REF_PRICE = {"BTC": 116_800.0, "HIVE": 0.25, "DOGE": 0.26}
MARKETS = [
    (venue, symbol, market.lot_size, market.tier_table(), REF_PRICE[market.base])
    for venue, v in SCENARIO.venues.items()
    for symbol, market in v.markets().items()
]


@st.composite
def snapshots(draw: st.DrawFn) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for a in range(draw(st.integers(1, 12))):
        venue = draw(st.sampled_from(sorted(SCENARIO.venues)))
        mine = [m for m in MARKETS if m[0] == venue]
        chosen = draw(st.lists(st.sampled_from(range(len(mine))), min_size=1, max_size=len(mine), unique=True))
        cross_im = 0.0
        cross_rows = []
        for i in chosen:
            _, symbol, lot, table, ref = mine[i]
            entry = ref * draw(st.floats(0.5, 2.0))
            max_lots = int(0.9 * table.cap[-1] / (lot * entry))
            lots = draw(st.integers(1, min(max_lots, 10_000_000)))
            notional = lots * lot * entry
            cap = float(max_leverage(table, notional))
            row: dict[str, object] = {
                "venue": venue,
                "account": f"acct-{a}",
                "market": symbol,
                "side": draw(st.sampled_from(["long", "short"])),
                "size": lots * lot,
                "entry_price": entry,
                "lots": lots,
                "lot": lot,
            }
            if draw(st.booleans()):
                row["margin_mode"] = "isolated"
                row["collateral"] = notional / draw(st.floats(1.0, 0.9 * cap))
            else:
                row["margin_mode"] = "cross"
                cross_im += notional / cap
                cross_rows.append(row)
            rows.append(row)
        wallet = cross_im * draw(st.floats(1.01, 5.0))
        for row in cross_rows:
            row["collateral"] = wallet
    return rows


def write(rows: list[dict[str, object]], folder: Path, parquet: bool) -> Path:
    if parquet:
        path = folder / "p.parquet"
        pq.write_table(pa.table({c: [r[c] for r in rows] for c in REQUIRED_COLUMNS}), path)
    else:
        path = folder / "p.csv"
        lines = [",".join(REQUIRED_COLUMNS)]
        lines += [
            ",".join(repr(r[c]) if isinstance(r[c], float) else str(r[c]) for c in REQUIRED_COLUMNS) for r in rows
        ]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@settings(max_examples=40, deadline=None)
@given(rows=snapshots(), parquet=st.booleans())
def test_any_valid_snapshot_loads_with_exact_totals(rows: list[dict[str, object]], parquet: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        snap = load_positions(write(rows, Path(folder), parquet), SCENARIO)
    assert snap.n == len(rows)
    keys = [f"{r['venue']}:{r['market']}" for r in rows]
    signed = [int(r["lots"]) * (1 if r["side"] == "long" else -1) for r in rows]  # type: ignore[call-overload]
    assert snap.size_lots.tolist() == signed
    assert [snap.market_keys[m] for m in snap.market] == keys
    expected = [abs(s) * float(r["lot"]) * float(r["entry_price"]) for s, r in zip(signed, rows, strict=True)]  # type: ignore[arg-type]
    assert math.fsum(snap.notional_at_entry) == math.fsum(expected)
    assert snap.collateral.tolist() == [r["collateral"] for r in rows]
    for key in set(keys):
        m = snap.market_keys.index(key)
        assert int(snap.size_lots[snap.market == m].sum()) == sum(
            s for s, k in zip(signed, keys, strict=True) if k == key
        )
    assert np.array_equal(snap.isolated, np.array([r["margin_mode"] == "isolated" for r in rows]))
