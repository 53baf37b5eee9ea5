"""A corpus of malformed inputs: scenario, grid and positions files, and command-line values, each with the command
that reads it and a word its error must name.

Every case is malformed by construction (NaN, infinity, a boolean or quoted number where a number belongs, a number
beyond any sane size, a table where a value belongs, bytes that are not UTF-8 or not TOML, a name that is a path, a
size that would exhaust memory, a broken positions file). ``cases()`` builds them in ``tmp``, in a fixed order.
"""

from __future__ import annotations

import copy
import csv
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w

from perpstress import Scenario
from perpstress.presets import scenario_text

BAD_NUMBERS: tuple[tuple[str, Any], ...] = (
    ("nan", math.nan),
    ("inf", math.inf),
    ("-inf", -math.inf),
    ("true", True),
    ("false", False),
    ("quoted", "1.5"),
    ("1e308", 1e308),
    ("-1e308", -1e308),
    ("int-1e30", 10**30),
    ("list", [1.0]),
    ("table", {"x": 1}),
)
"""Values no numeric field holds."""

BAD_NAMES = ("../escape", "/abs/path", "a/b", ".hidden", "", " ", "x" * 100, "a\\b", "~/home", "nul\u0000byte", "..")

POSITIONS_HEADER = ("venue", "account", "market", "side", "size", "entry_price", "margin_mode", "collateral")
GOOD_ROW = ("binance", "a1", "BTCUSDT", "long", "0.5", "116000", "isolated", "10000")


@dataclass(frozen=True)
class Case:
    kind: str
    """Class of the malformation (for counts)."""
    name: str
    args: tuple[str, ...]
    """The ``perpstress`` command line, with ``{out}`` standing for a fresh output folder."""
    names: tuple[str, ...]
    """Texts the first error line must contain (the file, the field)."""


def _leaves(node: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))
    else:
        yield path, node


def _set(doc: dict[str, Any], path: tuple[str | int, ...], value: Any) -> None:
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _field(path: tuple[str | int, ...]) -> str:
    """The last named key of ``path`` (what the error must name)."""
    return next(str(p) for p in reversed(path) if isinstance(p, str))


def _toml(doc: dict[str, Any]) -> str:
    """TOML text of ``doc``; NaN and infinity written as TOML's ``nan`` and ``inf``."""
    return tomli_w.dumps(doc)


def _numeric_paths(doc: dict[str, Any]) -> list[tuple[str | int, ...]]:
    return [p for p, v in _leaves(doc) if isinstance(v, int | float) and not isinstance(v, bool)]


def scenario_cases(tmp: Path) -> Iterator[Case]:
    base = __import__("tomllib").loads(scenario_text("quickstart"))
    resolved = __import__("tomllib").loads(Scenario.load("quickstart").to_toml())

    def write(name: str, doc: dict[str, Any] | None = None, raw: bytes | None = None) -> str:
        path = tmp / f"{name}.toml"
        path.write_bytes(raw if raw is not None else _toml(doc or {}).encode())
        return str(path)

    def run_and_check(kind: str, name: str, file: str, *names: str) -> Iterator[Case]:
        yield Case(kind, name + "/check", ("check", file), (file, *names))
        yield Case(kind, name + "/run", ("run", file, "--out", "{out}/run"), (file, *names))

    # numbers: every numeric value the user's file writes, and a spread of the resolved presets' values
    resolved_paths = _numeric_paths(resolved)
    paths = [("file", p, base) for p in _numeric_paths(base)]
    paths += [("preset", p, resolved) for p in resolved_paths[:: max(len(resolved_paths) // 40, 1)]]
    for origin, path, doc in paths:
        for label, value in BAD_NUMBERS:
            mutated = copy.deepcopy(doc)
            _set(mutated, path, value)
            stem = f"num-{origin}-{'.'.join(map(str, path))}-{label}"
            file = write(stem.replace("/", "_").replace(":", "_").replace('"', ""), mutated)
            yield Case("number", stem, ("check", file), (file, _field(path)))
    for label, value in BAD_NUMBERS[:7]:  # the same through run, for a few fields
        for path in (("shock", "jump"), ("venues", "binance", "insurance_fund", "initial_usd"), ("seed",)):
            mutated = copy.deepcopy(base)
            _set(mutated, path, value)
            file = write(f"numrun-{'.'.join(path)}-{label}", mutated)
            yield Case("number", f"run {path} {label}", ("run", file, "--out", "{out}/run"), (file, path[-1]))

    # tables where values belong and values where tables belong
    sections: list[tuple[str, ...]] = [("venues",), ("shock",), ("crowd",), ("makers",), ("takers",), ("engine",),
                                       ("venues", "binance"), ("shock", "assets"), ("crowd", "markets"),
                                       ("venues", "binance", "insurance_fund"), ("shock", "assets", "BTC")]  # fmt: skip
    for section in sections:
        for label, value in (("int", 5), ("text", "x"), ("list", [1, 2]), ("bool", True)):
            mutated = copy.deepcopy(base)
            _set(mutated, section, value)
            file = write(f"shape-{'.'.join(section)}-{label}", mutated)
            yield from run_and_check("shape", f"{'.'.join(section)}={label}", file, section[-1])
    for key, value in (("name", 5), ("start", 5), ("start", "yesterday"), ("venues", {}), ("step_ms", 0)):
        mutated = copy.deepcopy(base)
        mutated[key] = value
        yield from run_and_check("shape", f"{key}={value!r}", write(f"shape-{key}-{value!r}", mutated), key)
    for key in ("name", "start", "duration_s", "venues"):
        mutated = copy.deepcopy(base)
        del mutated[key]
        yield from run_and_check("missing", f"no {key}", write(f"missing-{key}", mutated), key)
    for section in ("shock", "makers"):  # valid, but a run needs it: check says so too
        mutated = copy.deepcopy(base)
        del mutated[section]
        yield from run_and_check("missing", f"no [{section}]", write(f"missing-{section}", mutated), section)

    # unknown keys, few and very many (the error is capped)
    for n in (1, 30, 100_000):
        mutated = copy.deepcopy(base)
        mutated.update({f"unknown_{i}": i for i in range(n)})
        yield from run_and_check("unknown", f"{n} unknown keys", write(f"unknown-{n}", mutated), "unknown_0")
    mutated = copy.deepcopy(base)
    mutated["venues"]["binance"]["nonsense"] = 1
    yield from run_and_check("unknown", "unknown venue key", write("unknown-venue", mutated), "nonsense")

    # rules of the crowd's flow, margin calls and makers' hedges
    rules: list[tuple[str, dict[str, Any], str]] = [
        ("flow market", {"flow": {"markets": {"binance:NOPE": {"accounts": 10}},
                                  "dip": {"threshold": 0.02, "rate_per_s": 1.0}}}, "binance:NOPE"),
        ("flow without a rule", {"flow": {"markets": {"binance:BTCUSDT": {"accounts": 10}}}}, "markets"),
        ("flow threshold", {"flow": {"markets": {"binance:BTCUSDT": {"accounts": 10}},
                                     "dip": {"threshold": 2.0, "rate_per_s": 1.0}}}, "threshold"),
        ("unanswered share", {"crowd": base["crowd"] | {"topup_unanswered_share": 1.5}}, "topup_unanswered_share"),
        ("hedge venue", {"makers": base["makers"] | {"hedges": [{"market": "binance:BTCUSDT",
                         "hedge": "binance:HIVEUSDT", "capital_usd": 1e6}]}}, "hedge"),
    ]  # fmt: skip
    for name, change, field in rules:
        mutated = copy.deepcopy(base) | copy.deepcopy(change)
        yield from run_and_check("rule", name, write(f"rule-{name.replace(' ', '-')}", mutated), field)

    # bytes: not UTF-8, not TOML, nested absurdly deep, empty, a directory
    text = scenario_text("quickstart").encode()
    for i, at in enumerate(range(0, len(text), max(len(text) // 8, 1))):
        yield from run_and_check("bytes", f"0xff at {at}", write(f"bytes-ff-{i}", raw=text[:at] + b"\xff" + text[at:]))
    openers = [i for i, c in enumerate(text) if c == ord('"')][::2]  # opening quotes: a cut leaves a string open
    for i, at in enumerate(openers[:: max(len(openers) // 8, 1)]):
        yield from run_and_check("bytes", f"cut at {at}", write(f"bytes-cut-{i}", raw=text[: at + 2]))
    for opener, closer in (("[", "]"), ("{a=", "}")):
        for depth in (100, 1000, 100_000):
            raw = f"x = {opener * depth}{closer * depth}\n".encode()
            yield from run_and_check("bytes", f"{opener} x{depth}", write(f"bytes-deep-{opener[0]}-{depth}", raw=raw))
    odd = {
        "empty": b"",
        "comment": b"# nothing\n",
        "binary": bytes(range(256)) * 4,
        "bom": b"\xef\xbb\xbf" + text,
        "utf16": scenario_text("quickstart").encode("utf-16"),
    }
    for label, raw in odd.items():
        yield from run_and_check("bytes", label, write(f"bytes-{label}", raw=raw))
    folder = tmp / "a-folder.toml"
    folder.mkdir(exist_ok=True)
    yield from run_and_check("bytes", "a directory", str(folder))
    yield from run_and_check("bytes", "no such file", str(tmp / "missing.toml"))

    # names that are paths
    for i, name in enumerate(BAD_NAMES):
        mutated = copy.deepcopy(base)
        mutated["name"] = name
        file = write(f"name-{i}", mutated)
        yield Case("name", f"name {name!r}/check", ("check", file), (file, "name"))
        yield Case("name", f"name {name!r}/run", ("run", file), (file, "name"))  # the default --out is the name

    # sizes that would exhaust memory or never end
    sizes: list[tuple[tuple[str, ...], Any, str]] = [
        (("crowd", "markets", "binance:BTCUSDT", "accounts"), 10**12, "accounts"),
        (("crowd", "markets", "binance:BTCUSDT", "accounts"), 10**9, "size"),
        (("makers", "per_market"), 100_000, "per_market"),
        (("makers", "levels"), 10**6, "levels"),
        (("duration_s",), 1e12, "duration_s"),
        (("duration_s",), 1e10, "size"),
        (("takers", "rate_per_s"), 1e9, "rate_per_s"),
        (("flow", "markets", "binance:BTCUSDT", "accounts"), 10**8, "(size)"),
        (("engine", "book_capacity"), 10**9, "book_capacity"),
        (("engine", "max_cascade_rounds"), 10**9, "max_cascade_rounds"),
    ]
    for path, value, field in sizes:
        mutated = copy.deepcopy(base)
        if path[0] == "engine":
            mutated.setdefault("engine", {})
        if path[0] == "flow":
            mutated["flow"] = {"markets": {"binance:BTCUSDT": {}}, "dip": {"threshold": 0.02, "rate_per_s": 1.0}}
        _set(mutated, path, value)
        file = write(f"size-{'.'.join(path)}-{value:g}".replace(":", "_"), mutated)
        yield from run_and_check("size", f"{'.'.join(path)}={value:g}", file, field)


def command_line_cases(tmp: Path) -> Iterator[Case]:
    for scale in ("0", "-1", "nan", "inf", "1e9", "-inf"):
        yield Case("command line", f"run --scale {scale}", ("run", "quickstart", "--scale", scale, "--out", "{out}/r"),
                   ("--scale",))  # fmt: skip
        yield Case("command line", f"sweep --scale {scale}",
                   ("sweep", "quickstart", "--scale", scale, "--out", "{out}/s", "--executor", "serial"),
                   ("--scale",))  # fmt: skip
    for seed in ("-1",):
        yield Case("command line", f"run --seed {seed}", ("run", "quickstart", "--seed", seed, "--out", "{out}/r"),
                   ("seed",))  # fmt: skip
    for seeds in ("0", "-3", "10000000"):
        yield Case("command line", f"sweep --seeds {seeds}",
                   ("sweep", "quickstart", "--seeds", seeds, "--out", "{out}/s", "--executor", "serial"),
                   ("seeds",))  # fmt: skip


def grid_cases(tmp: Path) -> Iterator[Case]:
    def sweep(name: str, kind: str, raw: bytes, *names: str) -> Case:
        path = tmp / f"grid-{name}.toml"
        path.write_bytes(raw)
        args = ("sweep", "quickstart", "--grid", str(path), "--out", "{out}/sweep", "--executor", "serial")
        return Case(kind, f"grid {name}", args, (str(path), *names))

    numeric = ["venues.binance.insurance_fund.initial_usd", "shock.jump", "shock.stress_vol", "makers.depth_usd",
               "crowd.leverage_median", "takers.rate_per_s", "venues.hyperliquid.insurance_fund.initial_usd",
               "makers.capital_usd", "shock.drift", "crowd.markets.\"binance:BTCUSDT\".notional_usd"]  # fmt: skip
    for path in numeric:
        for label, value in BAD_NUMBERS:
            doc = {"grid": {path.replace('"', ""): [value]}} if '"' not in path else None
            if doc is None:
                raw = f'[grid]\n"{path.replace(chr(34), "")}" = [{_toml_value(value)}]\n'.encode()
            else:
                raw = f'[grid]\n"{path}" = [{_toml_value(value)}]\n'.encode()
            yield sweep(f"{path}-{label}".replace('"', "").replace(":", "_"), "grid number", raw, "grid")
    shapes = {
        "not-toml": b"[grid\nx = ",
        "not-utf8": b'[grid]\n"shock.jump" = [-0.1, -0.2]\n# \xff\xfe\n',
        "no-grid": b"[other]\nx = [1]\n",
        "grid-is-5": b"grid = 5\n",
        "not-a-list": b'[grid]\n"shock.jump" = -0.1\n',
        "empty-list": b'[grid]\n"shock.jump" = []\n',
        "seed": b'[grid]\n"seed" = [1, 2]\n',
        "empty-key": b'[grid]\n"shock..jump" = [1]\n',
        "unknown-path": b'[grid]\n"shock.nope" = [1]\n',
        "through-a-value": b'[grid]\n"name.x" = [1]\n',
        "repeats": b'[grid]\n"shock.jump" = [-0.1, -0.1]\n',
        "deep": b"[grid]\nx = " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "billion-cells": _billion_cells(),
    }
    for name, raw in shapes.items():
        yield sweep(name, "grid shape", raw)


def _billion_cells() -> bytes:
    """Ten axes of ten values: 10^10 cells."""
    fields = ["stress_vol", "calm_vol", "half_life_s", "drift_s", "appetite_floor", "appetite_half_life_s", "at_s",
              "jump", "drift"]  # fmt: skip
    lines = ['"venues.binance.insurance_fund.initial_usd" = [' + ", ".join(str(1e6 + i) for i in range(10)) + "]"]
    lines += [f'"shock.{f}" = [' + ", ".join(str(0.001 * (i + 1)) for i in range(10)) + "]" for f in fields]
    return ("[grid]\n" + "\n".join(lines) + "\n").encode()


def _toml_value(value: Any) -> str:
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip() if not isinstance(value, dict) else "{ x = 1 }"


def positions_cases(tmp: Path) -> Iterator[Case]:
    def csv_file(name: str, rows: list[tuple[str, ...]], header: tuple[str, ...] = POSITIONS_HEADER) -> str:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        writer.writerows(rows)
        path = tmp / f"pos-{name}.csv"
        path.write_text(buf.getvalue())
        return str(path)

    def both(kind: str, name: str, file: str, *names: str) -> Iterator[Case]:
        yield Case(kind, f"{name}/check", ("positions", "check", file, "--scenario", "quickstart"), (file, *names))
        yield Case(kind, f"{name}/run", ("run", "quickstart", "--positions", file, "--out", "{out}/run"),
                   (file, *names))  # fmt: skip

    numeric = {"size": 4, "entry_price": 5, "collateral": 7}
    values = ("nan", "inf", "-inf", "1e308", "-1", "0", "abc", "", "true", "1e30", "0x10", "1_000")
    for column, at in numeric.items():
        for value in values:
            row = list(GOOD_ROW)
            row[at] = value
            yield from both("positions csv", f"csv {column}={value!r}", csv_file(f"{column}-{value}", [tuple(row)]),
                            column)  # fmt: skip
    texts = {"venue": (0, ("kraken", "", "../x")), "market": (2, ("NOPE", "")), "side": (1 + 2, ("up", "")),
             "margin_mode": (6, ("portfolio", ""))}  # fmt: skip
    for column, (at, bad) in texts.items():
        for value in bad:
            row = list(GOOD_ROW)
            row[at] = value
            file = csv_file(f"{column}-t-{value}".replace("/", "_"), [tuple(row)])
            yield from both("positions csv", f"csv {column}={value!r}", file, column)
    header_cases = {
        "missing-size": tuple(c for c in POSITIONS_HEADER if c != "size"),
        "duplicate-size": (*POSITIONS_HEADER, "size"),
    }
    for name, header in header_cases.items():
        rows = [GOOD_ROW if len(header) == len(POSITIONS_HEADER) else
                tuple(v for c, v in zip(POSITIONS_HEADER, GOOD_ROW, strict=True) if c in header)]  # fmt: skip
        if len(header) > len(POSITIONS_HEADER):
            rows = [(*GOOD_ROW, "1")]
        yield from both("positions csv", name, csv_file(name, rows, header), "size")
    for name, raw in (("empty", b""), ("header-only", (",".join(POSITIONS_HEADER) + "\n").encode()),
                      ("not-utf8", (",".join(POSITIONS_HEADER) + "\n").encode() + b"\xff\xfe,x\n"),
                      ("ragged", (",".join(POSITIONS_HEADER) + "\nbinance,a1\n").encode())):  # fmt: skip
        path = tmp / f"pos-raw-{name}.csv"
        path.write_bytes(raw)
        yield from both("positions csv", name, str(path))

    def parquet_file(name: str, columns: dict[str, pa.Array]) -> str:
        path = tmp / f"pos-{name}.parquet"
        pq.write_table(pa.table(columns), path)
        return str(path)

    good: dict[str, Any] = {c: [v] for c, v in zip(POSITIONS_HEADER, GOOD_ROW, strict=True)}
    good.update({"size": [0.5], "entry_price": [116000.0], "collateral": [10000.0]})
    replacements: dict[str, Callable[[], pa.Array]] = {
        "binary": lambda: pa.array([b"\x00\x01"], type=pa.binary()),
        "bool": lambda: pa.array([True]),
        "text": lambda: pa.array(["1.5"]),
        "nan": lambda: pa.array([math.nan]),
        "inf": lambda: pa.array([math.inf]),
        "1e308": lambda: pa.array([1e308]),
        "uint64-max": lambda: pa.array([2**64 - 1], type=pa.uint64()),
        "int64-max": lambda: pa.array([2**63 - 1], type=pa.int64()),
        "list": lambda: pa.array([[1.0]]),
        "null": lambda: pa.array([None], type=pa.float64()),
        "struct": lambda: pa.array([{"a": 1.0}]),
    }
    for column in numeric:
        for label, make in replacements.items():
            cols = {c: pa.array(v) for c, v in good.items()}
            cols[column] = make()
            yield from both("positions parquet", f"parquet {column}={label}", parquet_file(f"{column}-{label}", cols),
                            column)  # fmt: skip
    for column in ("venue", "market", "side", "margin_mode", "account"):
        for label, make in (("binary", replacements["binary"]), ("float", lambda: pa.array([1.5])),
                            ("null", lambda: pa.array([None], type=pa.string()))):  # fmt: skip
            if column == "account" and label == "float":
                continue  # ids may be numbers: 12.0 and "12" are the same account
            cols = {c: pa.array(v) for c, v in good.items()}
            cols[column] = make()
            yield from both("positions parquet", f"parquet {column}={label}", parquet_file(f"{column}-{label}", cols),
                            column)  # fmt: skip
    dup = tmp / "pos-dup.parquet"
    arrays = [pa.array(v) for v in good.values()] + [pa.array([1.0])]
    pq.write_table(pa.Table.from_arrays(arrays, names=[*good, "size"]), dup)
    yield from both("positions parquet", "duplicate column", str(dup), "size")
    not_parquet = tmp / "pos-not.parquet"
    not_parquet.write_bytes(b"PAR1 not really")
    yield from both("positions parquet", "not parquet", str(not_parquet))


def cases(tmp: Path) -> list[Case]:
    """Every case, built in ``tmp``."""
    tmp.mkdir(parents=True, exist_ok=True)
    return [*scenario_cases(tmp), *command_line_cases(tmp), *grid_cases(tmp), *positions_cases(tmp)]
