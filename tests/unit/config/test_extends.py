"""``extends``: a what-if scenario file names the scenario it changes and holds only the change."""

from __future__ import annotations

from pathlib import Path

import pytest

from perpstress import Scenario
from perpstress.errors import ConfigError


def test_a_what_if_changes_only_what_it_names(tmp_path: Path) -> None:
    (tmp_path / "bigger.toml").write_text(
        'extends = "quickstart"\nname = "bigger"\n[venues.binance]\ninsurance_fund.initial_usd = 5e6\n'
    )
    what_if = Scenario.load(tmp_path / "bigger.toml")
    base = Scenario.load("quickstart")
    assert what_if.venues["binance"].insurance_fund.initial_usd == 5e6
    assert what_if == base.with_(name="bigger", venues__binance__insurance_fund__initial_usd=5e6)


def test_extends_chains_through_files_relative_to_each_other(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.toml").write_text('extends = "quickstart"\nname = "a"\nseed = 3\n')
    (tmp_path / "b.toml").write_text('extends = "sub/a.toml"\nname = "b"\nduration_s = 120\n')
    b = Scenario.load(tmp_path / "b.toml")
    assert (b.name, b.seed, b.duration_s) == ("b", 3, 120)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('extends = "nowhere"\nname = "x"\n', "neither a scenario file nor a built-in"),
        ('extends = "missing.toml"\nname = "x"\n', "no such scenario file"),
        ('extends = 5\nname = "x"\n', "must name a built-in scenario"),
        ('extends = "self.toml"\nname = "x"\n', "cannot extend itself"),
    ],
)
def test_bad_extends_is_one_line_naming_the_file(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "self.toml").write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        Scenario.load(tmp_path / "self.toml")
    assert all("self.toml" in line for line in info.value.problems)
