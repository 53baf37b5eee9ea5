"""At the liquidation price the margin balance equals the maintenance margin under the venue's tiers; at the
bankruptcy price it is zero: every preset market, random sides, sizes, entries and collateral across tiers,
isolated and cross (other positions held fixed)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from perpstress.config.venue import VenueConfig
from perpstress.presets import available_presets
from perpstress.rules.liquidation import bankruptcy_price, liquidation_price
from perpstress.rules.margin import maintenance_margin

MARKETS = [
    (preset, symbol)
    for preset in available_presets()
    for symbol in VenueConfig.model_validate({"preset": preset}).perpetuals
]
VENUES = {p: VenueConfig.model_validate({"preset": p}) for p in available_presets()}


@pytest.mark.parametrize(("preset", "symbol"), MARKETS)
@settings(max_examples=60, deadline=None)
@given(
    side=st.sampled_from([1, -1]),
    log_notional=st.floats(np.log(1e3), np.log(3e8)),
    entry_shift=st.floats(-0.5, 0.5),
    leverage=st.floats(1.05, 150.0),
    other_mm=st.floats(0.0, 0.02),
    other_upnl=st.floats(-0.02, 0.02),
    cross=st.booleans(),
)
def test_margin_balance_at_liquidation_and_bankruptcy_prices(
    preset, symbol, side, log_notional, entry_shift, leverage, other_mm, other_upnl, cross
) -> None:
    market = VENUES[preset].perpetuals[symbol]
    entry = 100.0 * np.exp(entry_shift)
    notional = float(np.exp(log_notional))
    q = notional / entry
    table = market.tier_table_for_size(q)
    # a long whose maintenance rate at its size is 100 % or more (Drift's IMF at hundreds of millions) is
    # liquidatable at every price: liquidation_price says NaN (no price balances it), tested below
    assume(side < 0 or float(table.mmr[-1]) < 1.0)
    collateral = notional / leverage
    omm = other_mm * notional if cross else 0.0
    oup = other_upnl * notional if cross else 0.0
    lp = float(liquidation_price(table, side, q, entry, collateral, omm, oup))
    bp = float(bankruptcy_price(side, q, entry, collateral, oup))
    effective = collateral - omm + oup
    if side > 0 and effective >= q * entry:
        assert lp == 0.0  # no price liquidates a long whose collateral covers its notional
    else:
        balance = effective + side * q * (lp - entry)
        assert balance == pytest.approx(float(maintenance_margin(table, q * lp)), rel=1e-9, abs=1e-9 * notional)
    if bp > 0:
        assert collateral + oup + side * q * (bp - entry) == pytest.approx(0.0, abs=1e-9 * notional)
    if lp > 0 and bp > 0 and omm == 0:
        # The liquidation price is met before bankruptcy as the price moves against the position.
        assert side * (lp - bp) >= -1e-9 * entry


def test_a_long_whose_maintenance_rate_reaches_100_percent_has_no_liquidation_price() -> None:
    market = VENUES["drift"].perpetuals["BTC-PERP"]
    q = 3e8 / 60.0
    table = market.tier_table_for_size(q)
    assert float(table.mmr[-1]) >= 1.0  # Drift's IMF margin at $300M
    assert np.isnan(liquidation_price(table, 1, q, 60.0, 1.5e8))
    assert np.isfinite(liquidation_price(table, -1, q, 60.0, 1.5e8))
