"""The Python API: run a scenario, open a run directory later, read its tables as pandas or Polars frames.

::

    import perpstress

    run = perpstress.run("quickstart", seed=3, scale=0.1)          # nothing written without out=
    run.summary["adl"]["notional_usd"]                              # summary.json as a dict
    run.liquidations.groupby("venue").notional_usd.sum()            # pandas (the `frames` extra)
    run.polars.adl                                                  # Polars
    run.headline()                                                  # flat dict of headline numbers
    again = perpstress.load("runs/quickstart-seed7")                # a run directory written before

A :class:`Run` made by :func:`run` holds its tables in memory (as Arrow tables); one made by :func:`load` reads
each Parquet file the first time it is asked for. Frames are built on each access from the Arrow table, so a
caller may change a frame without changing the run. pandas and Polars are optional: the first access without
them raises :class:`~perpstress.errors.UsageError` naming the extra to install.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from perpstress.config.scenario import Scenario
from perpstress.errors import DataError, UsageError
from perpstress.extras import require
from perpstress.outputs.headline_row import HeadlineValue, headline
from perpstress.outputs.runs import SCENARIO, SUMMARY, find_runs, missing_files, parquet_tables, read_summary

if TYPE_CHECKING:
    import pyarrow as pa

FrameKind = Literal["pandas", "polars"]
ScenarioSource = Scenario | str | os.PathLike[str] | Mapping[str, Any]

_TABLE_NOTES = {"events/trades": "written only with engine.record_trades = true"}


class Run:
    """One simulated run: its summary, scenario and tables.

    ``summary`` is ``summary.json`` as a dict; ``scenario`` the resolved :class:`Scenario` (seed included);
    ``path`` the run directory, or None for a run kept in memory. Tables are named by their path in the run
    directory without ``.parquet`` (``timeseries``, ``events/liquidations``); the last part alone works when it is
    unambiguous (``liquidations``). ``run.liquidations``, ``run.adl``, ``run.timeseries`` and ``run.trades`` are
    pandas frames; ``run.polars.liquidations`` or ``run.frames("polars").adl`` give Polars ones.
    """

    def __init__(
        self,
        summary: dict[str, Any],
        scenario: Scenario | Path,
        path: Path | None = None,
        tables: Mapping[str, pa.Table | Path] | None = None,
    ) -> None:
        self.summary = summary
        self.path = path
        self._scenario = scenario
        self._sources: dict[str, pa.Table | Path] = dict(sorted((tables or {}).items()))
        self._loaded: dict[str, pa.Table] = {}

    # --- what the run is -------------------------------------------------------------------------------------

    @property
    def scenario(self) -> Scenario:
        """The resolved scenario (read from the run's ``scenario.toml`` on first use when loaded)."""
        if isinstance(self._scenario, Path):
            path = self._scenario
            self._scenario = Scenario.from_toml(path.read_text(encoding="utf-8"), str(path))
        return self._scenario

    @property
    def name(self) -> str:
        """The scenario's name, as ``summary.json`` records it."""
        return str(self.summary.get("scenario", ""))

    @property
    def seed(self) -> int | None:
        seed = self.summary.get("seed")
        return int(seed) if seed is not None else None

    def headline(self) -> dict[str, HeadlineValue]:
        """The run's headline numbers as a flat dict (see :func:`perpstress.outputs.headline_row.headline`)."""
        return headline(self.summary)

    def __repr__(self) -> str:
        where = str(self.path) if self.path is not None else "in memory"
        return f"Run({self.name!r}, seed={self.seed}, {where}, tables: {', '.join(self.tables())})"

    # --- tables ----------------------------------------------------------------------------------------------

    def tables(self) -> list[str]:
        """Names of the run's tables, sorted (``events/adl``, ``events/liquidations``, ..., ``timeseries``)."""
        return list(self._sources)

    def arrow(self, name: str) -> pa.Table:
        """Table ``name`` as a ``pyarrow.Table``."""
        key = self._resolve(name)
        if key not in self._loaded:
            source = self._sources[key]
            if isinstance(source, Path):
                import pyarrow.parquet as pq

                try:
                    self._loaded[key] = pq.read_table(source)
                except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
                    raise DataError([f"{source}: cannot be read as Parquet: {exc}"]) from None
            else:
                self._loaded[key] = source
        return self._loaded[key]

    def table(self, name: str, kind: FrameKind = "pandas") -> Any:
        """Table ``name`` as a pandas (default) or Polars frame."""
        return _frame(self.arrow(name), kind)

    def frames(self, kind: FrameKind = "pandas") -> Frames:
        """Every table as an attribute in one frame library: ``run.frames("polars").liquidations``."""
        if kind not in ("pandas", "polars"):
            raise UsageError(f"frame kind {kind!r} is not one of: pandas, polars")
        return Frames(self, kind)

    @property
    def polars(self) -> Frames:
        """The tables as Polars frames: ``run.polars.adl``."""
        return Frames(self, "polars")

    @property
    def liquidations(self) -> Any:
        """Every liquidation (``events/liquidations``), a pandas frame."""
        return self.table("events/liquidations")

    @property
    def adl(self) -> Any:
        """Every ADL fill (``events/adl``), a pandas frame."""
        return self.table("events/adl")

    @property
    def timeseries(self) -> Any:
        """Per market and step (``timeseries``), a pandas frame."""
        return self.table("timeseries")

    @property
    def trades(self) -> Any:
        """Every fill in the books (``events/trades``; needs ``engine.record_trades = true``), a pandas frame."""
        return self.table("events/trades")

    def _resolve(self, name: str) -> str:
        key = name.removesuffix(".parquet")
        if key in self._sources:
            return key
        matches = [k for k in self._sources if k.rsplit("/", 1)[-1] == key]
        if len(matches) == 1:
            return matches[0]
        where = str(self.path) if self.path is not None else f"run {self.name!r} (in memory)"
        if len(matches) > 1:
            raise UsageError(f"{where}: table name {name!r} is ambiguous: {', '.join(matches)}")
        full = key if "/" in key else f"events/{key}"
        note = f"; {full} is {_TABLE_NOTES[full]}" if full in _TABLE_NOTES else ""
        raise UsageError(f"{where}: no table {name!r} (tables: {', '.join(self._sources) or 'none'}){note}")


class Frames:
    """The tables of one run as attributes in one frame library (``run.polars.adl``, ``frames["events/adl"]``)."""

    def __init__(self, run: Run, kind: FrameKind) -> None:
        self._run = run
        self._kind: FrameKind = kind

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._run.table(name, self._kind)

    def __getitem__(self, name: str) -> Any:
        return self._run.table(name, self._kind)

    def __dir__(self) -> list[str]:
        return sorted({n.rsplit("/", 1)[-1] for n in self._run.tables()})


def _frame(table: pa.Table, kind: FrameKind) -> Any:
    if kind == "pandas":
        require("pandas")
        return table.to_pandas()
    if kind == "polars":
        pl = require("polars")
        return pl.from_arrow(table)
    raise UsageError(f"frame kind {kind!r} is not one of: pandas, polars")


# --- run and load --------------------------------------------------------------------------------------------


def run(
    scenario: ScenarioSource,
    *,
    seed: int | None = None,
    scale: float = 1.0,
    out: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
    progress: bool | Callable[[int, int], None] = False,
) -> Run:
    """Simulate ``scenario`` and return the :class:`Run`.

    ``scenario`` is a :class:`Scenario`, a built-in scenario name (``"quickstart"``), a scenario file's path or a
    dict shaped like a scenario file. ``seed`` replaces the scenario's seed; ``scale`` multiplies the number of
    crowd accounts (not their notional). With ``out`` the run directory is written there (atomically; an existing
    one only with ``overwrite``); without it nothing is written and the tables stay in memory. ``progress=True``
    shows a progress bar on stderr; a callable is called as ``progress(steps_done, steps_total)`` after each step
    (a notebook's own bar, a log line).
    """
    sc = as_scenario(scenario)
    if seed is not None:
        sc = sc.with_(seed=seed)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not math.isfinite(scale) or scale <= 0:
        raise UsageError(f"scale must be a positive number (got {scale!r})")
    from perpstress.outputs.run import run_scenario

    with _progress(sc, progress) as advance:
        result = run_scenario(
            sc, None if out is None else Path(out), scale=float(scale), overwrite=overwrite, progress=advance
        )
    tables = {relative.removesuffix(".parquet"): table for relative, table in result.files.items()}
    return Run(result.summary, sc, result.path, tables)


def load(path: str | os.PathLike[str]) -> Run:
    """Open a run directory written by ``perpstress run`` or :func:`run` (tables are read on first use)."""
    root = Path(path)
    if not root.exists():
        raise UsageError(f"{root}: no such run directory")
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory; a run directory holds {SUMMARY}, {SCENARIO} and Parquet tables")
    if ".partial-" in root.name:
        raise UsageError(f"{root}: an unfinished run (the hidden directory an interrupted run leaves); run it again")
    if not (root / SUMMARY).is_file():
        nested = find_runs(root)
        hint = (
            f"; it holds {len(nested)} run directories (load one, or query them all with perpstress.query)"
            if nested
            else ""
        )
        raise UsageError(f"{root}: not a run directory (no {SUMMARY}){hint}")
    missing = missing_files(root)
    if missing:
        raise DataError([f"{root}: incomplete run directory: no {', '.join(missing)}"])
    summary = read_summary(root / SUMMARY)
    return Run(summary, root / SCENARIO, root, parquet_tables(root))


def as_scenario(source: ScenarioSource) -> Scenario:
    """A :class:`Scenario` from a scenario, a built-in name, a file path or a dict (validated like a file)."""
    if isinstance(source, Scenario):
        return source
    if isinstance(source, Mapping):
        return Scenario.from_dict(copy.deepcopy(dict(source)))
    if isinstance(source, str | os.PathLike):
        return Scenario.load(os.fspath(source))
    raise UsageError(f"scenario must be a Scenario, a built-in name, a path or a dict (got {type(source).__name__})")


@contextmanager
def _progress(sc: Scenario, show: bool | Callable[[int, int], None]) -> Iterator[Callable[[int], None] | None]:
    if callable(show):
        done = [0]

        def advance(_: int) -> None:
            done[0] += 1
            show(done[0], sc.steps)

        yield advance
        return
    if not show:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"{sc.name} (seed {sc.seed})", total=sc.steps)
        yield lambda _: bar.advance(task)
