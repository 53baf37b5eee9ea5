"""Bad scenarios are refused with one line per problem naming the file, the field path and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpstress.config.base import Confidence
from perpstress.config.scenario import Scenario
from perpstress.errors import ConfigError

HEAD = 'name = "t"\nstart = 2025-10-10T20:30:00Z\nduration_s = 60\n[venues.binance]\npreset = "binance"\n'


def problems(tmp_path: Path, body: str, head: str = HEAD) -> list[str]:
    path = tmp_path / "bad.toml"
    path.write_text(head + body)
    with pytest.raises(ConfigError) as info:
        Scenario.load(path)
    return list(info.value.problems)


def tiers(*rows: str) -> str:
    return "[venues.binance.perpetuals.BTCUSDT]\nmargin_tiers = [" + ", ".join(rows) + "]\n"


T1 = "{notional_floor = 0, notional_cap = 800000, max_leverage = 100, maintenance_margin_rate = 0.004}"


@pytest.mark.parametrize(
    ("body", "path", "rule"),
    [
        (
            tiers(
                T1, "{notional_floor = 300000, notional_cap = 9e5, max_leverage = 50, maintenance_margin_rate = 0.01}"
            ),
            "venues.binance.perpetuals.BTCUSDT.margin_tiers[1].notional_floor",
            "notional_floor 300000 is below the previous tier's cap 800000",
        ),
        (
            tiers("{notional_floor = 0, notional_cap = 8e5, max_leverage = 100, maintenance_margin_rate = 1.5}"),
            "venues.binance.perpetuals.BTCUSDT.margin_tiers[0].maintenance_margin_rate",
            "less than or equal to 1",
        ),
        (
            tiers("{notional_floor = 0, notional_cap = 8e5, max_leverage = 100, maintenance_margin_rate = 0.02}"),
            "venues.binance.perpetuals.BTCUSDT.margin_tiers[0].maintenance_margin_rate",
            "must be below the initial rate 1/max_leverage = 0.01",
        ),
        (
            tiers(
                T1, "{notional_floor = 8e5, notional_cap = 9e5, max_leverage = 125, maintenance_margin_rate = 0.005}"
            ),
            "venues.binance.perpetuals.BTCUSDT.margin_tiers[1].max_leverage",
            "leverage must not rise",
        ),
        (
            tiers(
                T1,
                "{notional_floor = 8e5, notional_cap = 9e5, max_leverage = 50, maintenance_margin_rate = 0.01, "
                "maintenance_amount = 5000}",
            ),
            "venues.binance.perpetuals.BTCUSDT.margin_tiers[1].maintenance_amount",
            "breaks continuity: the tiers below give 4800",
        ),
        ("insurance_fund.initial_usd = -5\n", "venues.binance.insurance_fund.initial_usd", "greater than or equal"),
        ("insurance_fund.inital_usd = 5\n", "venues.binance.insurance_fund.inital_usd", "unknown field"),
        ('adl = { rule = "coin_flip" }\n', "venues.binance.adl", "rule"),
        ('symbols = ["PEPEUSDT"]\n', "venues.binance.symbols", "PEPEUSDT not among this venue's perpetuals"),
        (
            "index.constituents_by_asset.HIVE = { binance = 1.0, gate = -1.0 }\n",
            "venues.binance.index.constituents_by_asset.HIVE.gate",
            "weight -1 must be positive",
        ),
        (
            'perpetuals.XRPUSDT.margin_table = "nope"\n',
            "venues.binance.perpetuals.XRPUSDT.margin_table",
            "no margin table 'nope'",
        ),
    ],
)
def test_rule_errors_name_file_path_and_rule(tmp_path: Path, body: str, path: str, rule: str) -> None:
    lines = problems(tmp_path, body)
    assert any(line.startswith(f"{tmp_path / 'bad.toml'}: {path}") and rule in line for line in lines), lines


def test_unknown_preset(tmp_path: Path) -> None:
    lines = problems(tmp_path, "", head='name = "t"\nstart = 2025-10-10T20:30:00Z\nduration_s = 60\n'
                     '[venues.kraken]\npreset = "kraken"\n')  # fmt: skip
    assert lines == [f"{tmp_path / 'bad.toml'}: venues.kraken.preset: unknown venue preset 'kraken'; known: "
                     "binance, bitget, bybit, drift, dydx, hyperliquid, okx"]  # fmt: skip


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    assert "not valid TOML" in problems(tmp_path, "name = = 3\n")[0]
    with pytest.raises(ConfigError, match="no such scenario file"):
        Scenario.load(tmp_path / "missing.toml")


def test_missing_required_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('name = "t"\n[venues.binance]\npreset = "binance"\n')
    with pytest.raises(ConfigError) as info:
        Scenario.load(path)
    assert f"{path}: start: required field is missing" in info.value.problems
    assert f"{path}: duration_s: required field is missing" in info.value.problems


def test_overrides_are_tagged_as_scenario_values() -> None:
    sc = Scenario.from_toml(HEAD + "insurance_fund.initial_usd = 2.5e9\n")
    fund = sc.venues["binance"].insurance_fund
    assert fund.initial_usd == 2.5e9
    assert fund.source_of("initial_usd").confidence is Confidence.SCENARIO
    assert fund.source_of("max_takeover_notional_fraction").confidence is Confidence.OFFICIAL


def test_switching_the_adl_rule_replaces_the_table() -> None:
    sc = Scenario.from_toml(HEAD + 'adl = { rule = "capped_pro_rata", max_haircut = 0.5 }\n')
    adl = sc.venues["binance"].adl
    assert adl.rule == "capped_pro_rata"
    assert adl.source.confidence is Confidence.SCENARIO


def test_resolved_scenario_round_trips_with_the_same_hash() -> None:
    sc = Scenario.from_toml(HEAD + "insurance_fund.initial_usd = 2.5e9\n")
    again = Scenario.from_toml(sc.to_toml())
    assert again == sc
    assert again.stable_hash() == sc.stable_hash()
    assert sc.with_(seed=3).stable_hash() != sc.stable_hash()


def test_with_applies_dotted_changes_with_validation() -> None:
    sc = Scenario.load("quickstart")
    bigger = sc.with_(venues__binance__insurance_fund__initial_usd=5e9)
    assert bigger.venues["binance"].insurance_fund.initial_usd == 5e9
    with pytest.raises(ConfigError, match=r"quickstart \(with_\): venues.binance.insurance_fund.initial_usd"):
        sc.with_(venues__binance__insurance_fund__initial_usd=-1)


SHOCK = '[shock]\nkind = "jump_regime"\nat_s = 10\njump = -0.02\nstress_vol = 0.001\nhalf_life_s = 60\n'


@pytest.mark.parametrize(
    ("assets", "path", "rule"),
    [
        ('BTC = {start_price = 1e5}\nWBETH = {tracks = "ETH", rate = 1.08}\n', "shock.assets.WBETH.tracks",
         "no asset ETH among the shock's assets (BTC)"),
        ('BTC = {start_price = 1e5}\nA = {tracks = "BTC"}\nB = {tracks = "A"}\n', "shock.assets.B.tracks",
         "A tracks BTC: track an asset with its own path"),
        ('BTC = {start_price = 1e5}\nA = {tracks = "BTC", start_price = 3.0}\n', "shock.assets.A.start_price",
         "its start is rate x BTC's, drop it"),
        ('BTC = {start_price = 1e5}\nA = {tracks = "BTC", beta = 2.0}\n', "shock.assets.A.tracks",
         "it moves with it, drop beta and idio_vol"),
        ("BTC = {start_price = 1e5}\nA = {beta = 2.0}\n", "shock.assets.A.start_price", "needs start_price"),
        ("BTC = {start_price = 1e5, rate = 2.0}\n", "shock.assets.BTC.rate", "name tracks"),
    ],
)  # fmt: skip
def test_tracked_asset_paths_are_checked(tmp_path: Path, assets: str, path: str, rule: str) -> None:
    lines = problems(tmp_path, SHOCK + "[shock.assets]\n" + assets)
    assert any(line.startswith(f"{tmp_path / 'bad.toml'}: {path}") and rule in line for line in lines), lines
