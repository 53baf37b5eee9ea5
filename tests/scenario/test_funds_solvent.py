"""No fund pays out money it does not have: a fund without equity takes nothing over (ADL follows), and a fund whose
inventory falls below zero equity is brought back to zero with the deficit recorded as bad debt. Money is
conserved either way."""

from __future__ import annotations

import pytest

from perpstress import Scenario
from perpstress.engine.simulation import Simulation

CASES = {
    "quickstart": Scenario.load("quickstart"),  # Hyperliquid's $3M vault ended at -$2.9M before
    "rally +200%": Scenario.load("quickstart").with_(shock__jump=2.0, shock__drift=0.0, seed=3),
    "tiny funds": Scenario.load("quickstart").with_(
        venues__binance__insurance_fund__initial_usd=1e4, venues__hyperliquid__insurance_fund__initial_usd=1e4
    ),
}


@pytest.mark.parametrize("name", CASES)
def test_no_fund_ends_or_dips_below_zero(name: str) -> None:
    summary = Simulation(CASES[name], scale=0.3).run().summary
    for venue, fund in summary["insurance_funds"].items():
        assert fund["min_usd"] >= 0.0, (venue, fund)
        assert fund["end_usd"] >= 0.0, (venue, fund)
    inv = summary["invariants"]
    assert inv["money_conservation_max_abs_error_usd"] < 1e-3
    assert inv["open_interest_max_imbalance"] == 0


def test_a_fund_that_would_have_gone_under_shows_bad_debt() -> None:
    summary = Simulation(CASES["tiny funds"], scale=0.3).run().summary
    assert summary["bad_debt_usd"] > 0
    assert sum(v["bad_debt_usd"] for v in summary["by_venue"].values()) == pytest.approx(summary["bad_debt_usd"])
