"""Grid files: parsing, cells in file order, union switches, and errors that name file, path, value and rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpstress import Scenario
from perpstress.config.venue import ProRataAdl, RankedQueueAdl
from perpstress.errors import ConfigError, UsageError
from perpstress.sweep import apply_cell, load_grid, parse_grid, validate_grid

BASE = Scenario.load("quickstart")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text, encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        validate_grid(BASE, load_grid(write(tmp_path, text)))
    return list(info.value.problems)


def test_cells_are_the_product_in_file_order(tmp_path: Path) -> None:
    grid = load_grid(
        write(
            tmp_path,
            '[grid]\n"venues.binance.insurance_fund.initial_usd" = [1e6, 5e6]\n'
            'venues.hyperliquid.adl.rule = ["ranked_queue", "capped_pro_rata", "wealth_pro_rata"]\n',
        )
    )
    assert grid.paths == ("venues.binance.insurance_fund.initial_usd", "venues.hyperliquid.adl.rule")
    cells = grid.cells()
    assert len(cells) == 6
    assert cells[0] == {"venues.binance.insurance_fund.initial_usd": 1e6, "venues.hyperliquid.adl.rule": "ranked_queue"}
    assert cells[1]["venues.hyperliquid.adl.rule"] == "capped_pro_rata"  # the last path varies fastest
    assert cells[3]["venues.binance.insurance_fund.initial_usd"] == 5e6
    scenarios = validate_grid(BASE, grid)
    assert scenarios[3].venues["binance"].insurance_fund.initial_usd == 5e6
    assert isinstance(scenarios[1].venues["hyperliquid"].adl, ProRataAdl)
    assert scenarios[1].venues["hyperliquid"].adl.rule == "capped_pro_rata"


def test_a_rule_switch_starts_the_table_afresh_and_a_table_value_sets_parameters() -> None:
    switched = apply_cell(BASE, {"venues.hyperliquid.adl.rule": "risk_aware_pro_rata"})
    adl = switched.venues["hyperliquid"].adl
    assert isinstance(adl, ProRataAdl)
    assert adl.max_haircut == 1.0  # the variant's default, nothing carried over from the ranked queue
    table = apply_cell(BASE, {"venues.hyperliquid.adl": {"rule": "capped_pro_rata", "max_haircut": 0.1}})
    adl = table.venues["hyperliquid"].adl
    assert isinstance(adl, ProRataAdl)
    assert adl.max_haircut == 0.1
    same = apply_cell(BASE, {"venues.hyperliquid.adl.rule": "ranked_queue"})  # the preset's own rule: unchanged
    assert isinstance(same.venues["hyperliquid"].adl, RankedQueueAdl)
    assert same.stable_hash() == BASE.stable_hash()


def test_a_changed_value_is_tagged_as_the_scenario_s() -> None:
    changed = apply_cell(BASE, {"venues.binance.insurance_fund.initial_usd": 7e6})
    fund = changed.venues["binance"].insurance_fund
    assert fund.source_of("initial_usd").confidence.value == "scenario"


def test_a_bad_value_names_grid_file_path_value_and_rule(tmp_path: Path) -> None:
    found = problems(tmp_path, '[grid]\n"venues.binance.insurance_fund.initial_usd" = [1e6, -5]\n')
    assert len(found) == 1
    line = found[0]
    assert line.startswith(f"{tmp_path / 'grid.toml'}: grid venues.binance.insurance_fund.initial_usd = -5: ")
    assert "venues.binance.insurance_fund.initial_usd" in line
    assert "greater than or equal to 0" in line


def test_a_misspelt_field_and_an_unknown_venue_are_named(tmp_path: Path) -> None:
    found = problems(
        tmp_path,
        '[grid]\n"venues.binance.insurance_fund.initial_usdd" = [1.0]\n"venues.okx.adl.rule" = ["capped_pro_rata"]\n',
    )
    assert any("initial_usdd" in p and "unknown field" in p for p in found)
    assert any("grid venues.okx.adl.rule" in p and "no such table" in p and "binance, hyperliquid" in p for p in found)


def test_switching_to_a_variant_that_needs_parameters_says_how() -> None:
    with pytest.raises(ConfigError) as info:
        validate_grid(BASE, parse_grid({"grid": {"venues.hyperliquid.adl.rule": ["random_scan"]}}, "g.toml"))
    text = "\n".join(info.value.problems)
    assert "g.toml: grid venues.hyperliquid.adl.rule = random_scan" in text
    assert "max_accounts_scanned" in text
    assert "required" in text
    assert '"venues.hyperliquid.adl" = [{ rule = "random_scan", ... }]' in text


def test_switching_back_to_the_preset_s_rule_takes_the_preset_s_parameters() -> None:
    pro_rata = apply_cell(BASE, {"venues.hyperliquid.adl": {"rule": "capped_pro_rata"}})
    back = apply_cell(pro_rata, {"venues.hyperliquid.adl.rule": "ranked_queue"})
    assert back.venues["hyperliquid"].adl == BASE.venues["hyperliquid"].adl


def test_grid_file_shape_errors(tmp_path: Path) -> None:
    for text, expected in (
        ("[other]\nx = 1\n", "no [grid] table"),
        ('[grid]\n"venues.binance.insurance_fund.initial_usd" = 1e6\n', "must be a list of values"),
        ('[grid]\n"venues.binance.insurance_fund.initial_usd" = []\n', "empty list"),
        ('[grid]\n"venues.binance.insurance_fund.initial_usd" = [1e6, 1e6]\n', "repeats item 0"),
        ("[grid]\nseed = [1, 2]\n", "seeds come from --seeds"),
        ("[grid\n", "not valid TOML"),
    ):
        with pytest.raises(ConfigError) as info:
            load_grid(write(tmp_path, text))
        assert any(expected in p for p in info.value.problems), (text, info.value.problems)
        assert all(p.startswith(str(tmp_path / "grid.toml")) for p in info.value.problems)
    with pytest.raises(ConfigError, match="no such grid file"):
        load_grid(tmp_path / "missing.toml")


def test_a_cell_whose_values_conflict_is_named_by_its_assignments() -> None:
    # Each value is valid with the base's other value; only together is the run shorter than one step.
    grid = parse_grid({"grid": {"duration_s": [600.0, 1.5], "step_ms": [1000, 2000]}}, "g.toml")
    with pytest.raises(ConfigError) as info:
        validate_grid(BASE, grid)
    (line,) = info.value.problems
    assert line.startswith("g.toml: grid cell 3 (duration_s=1.5, step_ms=2000)")
    assert "shorter than one step" in line


def test_an_empty_grid_is_one_cell_of_the_base() -> None:
    grid = parse_grid({"grid": {}}, "g.toml")
    assert grid.cells() == [{}]
    (only,) = validate_grid(BASE, grid)
    assert only.stable_hash() == BASE.stable_hash()


def test_the_baseline_is_a_cell_number_or_the_values_of_one_cell() -> None:
    from perpstress.sweep.grid import baseline_cell

    adl = [{"rule": "ranked_queue"}, {"rule": "capped_pro_rata", "max_haircut": 0.5}]
    grid = parse_grid({"grid": {"venues.binance.insurance_fund.initial_usd": [1e6, 8e6], "venues.binance.adl": adl}},
                      "g.toml")  # fmt: skip
    assert baseline_cell(grid, None) == 0
    assert baseline_cell(grid, "3") == 3
    assert baseline_cell(grid, "initial_usd=8e6, binance.adl={rule='ranked_queue'}") == 2
    spec = 'venues.binance.insurance_fund.initial_usd=1000000,adl={ rule = "capped_pro_rata", max_haircut = 0.5 }'
    assert baseline_cell(grid, spec) == 1
    for bad, message in (("4", "no such cell; the grid has cells 0 to 3"), ("initial_usd=8e6", "2 cells match"),
                         ("initial_usd=2e6", "no grid cell has these values"), ("fund=1", "fund is not a grid path"),
                         ("initial_usd", "is not PATH=VALUE"),
                         ("initial_usd=1e6,initial_usd=8e6", "is given twice")):  # fmt: skip
        with pytest.raises(UsageError, match=message):
            baseline_cell(grid, bad)
    with pytest.raises(UsageError, match="no grid"):
        baseline_cell(parse_grid({"grid": {}}, "g"), "rule=x")
