"""Check the CSVs in this folder: they parse, numeric fields are finite and positive where set, no duplicate rows.

Run: python data/oct2025/validate.py (exit code 1 on any problem).
"""

import csv
import math
import sys
from pathlib import Path

HERE = Path(__file__).parent
NUMERIC = {
    "open_interest_usd",
    "adl_notional_usd",
    "notional_floor_usdt",
    "notional_cap_usdt",
    "max_leverage",
    "maint_margin_rate",
    "cum_usdt",
    "position_floor_usdt",
    "risk_limit_cap_usdt",
    "initial_margin_rate",
    "mm_deduction_usdt",
    "max_amount_contracts",
    "min_initial_margin_rate",
    "position_cap_usdt",
    "deduction_usdt",
    "notional_floor_usdc",
    "notional_cap_usdc",
    "maint_deduction_usdc",
    "depth_usd",
    "band_pct",
    "depth_over_oi",
}
# Numeric fields that may be negative (a close-to-close change): checked for being finite only.
SIGNED = {"value"}
# Fields that may legitimately be zero (a first tier's floor or deduction).
ZERO_OK = {
    "notional_floor_usdt",
    "cum_usdt",
    "position_floor_usdt",
    "mm_deduction_usdt",
    "deduction_usdt",
    "notional_floor_usdc",
    "maint_deduction_usdc",
}
KEYS = {
    "open_interest.csv": ("venue", "symbol"),
    "market_asset_totals.csv": ("scope", "base", "as_of"),
    "market_depth.csv": ("venue", "symbol", "band_pct", "side", "as_of"),
    "macro_vol.csv": ("metric", "as_of"),
    "depth_to_oi.csv": ("asset", "depth_scope"),
}


def check(path: Path) -> list[str]:
    errors = []
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return [f"{path.name}: no rows"]
    seen = set()
    for i, row in enumerate(rows, 2):
        if None in row or any(v is None for v in row.values()):
            errors.append(f"{path.name}:{i}: wrong number of fields")
            continue
        whole = tuple(row.values())
        key = tuple(row[k] for k in KEYS.get(path.name, row.keys()))
        if whole in seen or key in seen:
            errors.append(f"{path.name}:{i}: duplicate row {key}")
        seen.update({whole, key})
        for name, value in row.items():
            if name in SIGNED and value != "":
                try:
                    if not math.isfinite(float(value)):
                        errors.append(f"{path.name}:{i}: {name}={value} is not finite")
                except ValueError:
                    errors.append(f"{path.name}:{i}: {name}={value!r} is not a number")
                continue
            if name not in NUMERIC or value == "":
                continue
            try:
                x = float(value)
            except ValueError:
                if value.startswith("+") or "/" in value or value.startswith("="):  # OKX's 'tier 4+' rule rows
                    continue
                errors.append(f"{path.name}:{i}: {name}={value!r} is not a number")
                continue
            if not math.isfinite(x) or x < 0 or (x == 0 and name not in ZERO_OK):
                errors.append(f"{path.name}:{i}: {name}={value} is not finite and positive")
        if "source" in row and not row["source"].strip():
            errors.append(f"{path.name}:{i}: no source")
        if "confidence" in row and row["confidence"] not in {"official", "secondary", "estimated"}:
            errors.append(f"{path.name}:{i}: confidence {row['confidence']!r}")
    return errors


def main() -> int:
    paths = sorted(HERE.glob("*.csv")) + sorted((HERE / "tiers").glob("*.csv"))
    errors = [e for p in paths for e in check(p)]
    for e in errors:
        print(e)
    print(f"{len(paths)} files checked, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
