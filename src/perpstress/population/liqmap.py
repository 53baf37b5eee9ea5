"""The liquidation map: how much notional each price level would liquidate, before any step runs.

For every position of a scenario's initial population (the crowd exactly as :class:`perpstress.engine.simulation.
Simulation` draws it, same seed and same order of draws, or a positions snapshot) the exact liquidation price is
solved with the market's tier table (:func:`perpstress.rules.liquidation.liquidation_price`: margin balance equals
maintenance margin). Notional is then binned by distance from the start price, per market (``venue:SYMBOL``),
longs below the start (they liquidate on a fall) and shorts above, and accumulated from the start outwards: the
cumulative column at a level is what a move to that level liquidates in total. This is the liquidation heatmap
traders read (e.g. Coinglass's liquidation map), computed from positions rather than estimated from leverage
guesses.

Assumptions, stated plainly:

- prices and collateral values are held at the start: a position's liquidation price is a price of its own market
  with everything else fixed (Binance's convention for cross accounts); funding, fees and stops are left out;
- a cross account holds one position (the engine's crowd); a snapshot's multi-position cross account is split as
  :func:`perpstress.population.positions_file.positions_to_crowd` splits it (wallet pro rata to notional);
- notional is ``|size| x start price`` (USD), so a market's bins, plus what lies beyond the range and the longs no
  price can liquidate, add up to its open interest at the start;
- a position already liquidatable at the start price is counted in the first level on its side;
- market makers, hedged owners and arbitrageurs are not in the map (only the crowd or the snapshot).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from perpstress.config.layout import market_layout
from perpstress.config.scenario import Scenario
from perpstress.errors import UsageError
from perpstress.population.crowd import CrowdPositions
from perpstress.population.initial import draw_population, start_prices
from perpstress.population.positions_file import PositionsSnapshot, positions_to_crowd
from perpstress.rules.liquidation import liquidation_price
from perpstress.rules.margin import TierTable
from perpstress.state.portfolio import F64, I64


@dataclass(frozen=True)
class InitialPopulation:
    """The perpetual markets of a scenario at its start and the positions that hold them."""

    market_keys: tuple[str, ...]
    """``venue:SYMBOL`` of each perpetual market, in the simulation's order."""
    start_price: F64
    """Each market's price at step 0 (the shock's index at the start), quote units."""
    lot_size: F64
    tables: tuple[TierTable, ...]
    crowd: CrowdPositions


def initial_population(
    scenario: Scenario, scale: float = 1.0, positions: PositionsSnapshot | None = None
) -> InitialPopulation:
    """The population a run of ``scenario`` starts with: its crowd (drawn as the simulation draws it) or
    ``positions`` (a validated snapshot, used as given; ``scale`` does not apply to it)."""
    if scenario.shock is None:
        raise UsageError(f"scenario {scenario.name}: the map needs a [shock] section (it sets the start prices)")
    layout = market_layout(scenario)
    n = layout.n_perpetual
    # The same streams as Simulation.__init__: start prices from the shock stream, the crowd from the population's
    start_all = start_prices(scenario, layout.base)
    lot_all = np.asarray(layout.lot_size, dtype=np.float64)
    keys, tables = list(layout.keys[:n]), list(layout.tables[:n])
    start, lot_size = start_all[:n], lot_all[:n]
    if positions is None:
        crowd, _ = draw_population(
            scenario, list(layout.keys), list(layout.base), start_all, lot_all, list(layout.tables), scale
        )
    else:
        if tuple(keys) != positions.market_keys:
            raise UsageError(f"{positions.source}: validated against another scenario's markets; load it again")
        crowd = positions_to_crowd(positions)
    return InitialPopulation(tuple(keys), start, lot_size, tuple(tables), crowd)


def position_liquidation_prices(pop: InitialPopulation) -> F64:
    """Each position's liquidation price (quote units): 0 for a long no price can liquidate (collateral covers its
    notional). Solved per market over the whole tier table."""
    crowd = pop.crowd
    out = np.full(crowd.market.shape[0], np.nan)
    for m in np.unique(crowd.market):
        sel = np.flatnonzero(crowd.market == m)
        lots = crowd.size_lots[sel]
        out[sel] = liquidation_price(
            pop.tables[int(m)],
            np.sign(lots),
            np.abs(lots) * pop.lot_size[int(m)],
            crowd.entry_price[sel],
            crowd.margin[sel],
        )
    return out


@dataclass(frozen=True)
class MarketMap:
    """One market's map: ``bins`` levels below the start (longs) and ``bins`` above (shorts).

    Level ``k`` (1-based) on a side covers prices between ``k - 1`` and ``k`` steps of ``range / bins`` from the
    start; ``level_price`` is its outer edge, the price at which its cumulative total has been liquidated.
    Arrays run from the highest level down: ``bins`` short levels, then ``bins`` long levels.
    """

    key: str
    start_price: float
    level_price: F64
    pct_from_start: F64
    long_usd: F64
    long_cum_usd: F64
    short_usd: F64
    short_cum_usd: F64
    long_positions: I64
    short_positions: I64
    long_total_usd: float
    short_total_usd: float
    long_beyond_usd: float
    """Long notional liquidated only below the map's range."""
    short_beyond_usd: float
    long_never_usd: float
    """Long notional no price liquidates (collateral at least the notional)."""
    long_at_start_usd: float
    """Already liquidatable at the start price (included in the first level)."""
    short_at_start_usd: float

    @property
    def venue(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def symbol(self) -> str:
        return self.key.split(":", 1)[1]

    def to_dict(self) -> dict[str, Any]:
        levels = [
            {
                "price": float(self.level_price[i]),
                "pct_from_start": float(self.pct_from_start[i]),
                "long_usd": float(self.long_usd[i]),
                "long_cum_usd": float(self.long_cum_usd[i]),
                "short_usd": float(self.short_usd[i]),
                "short_cum_usd": float(self.short_cum_usd[i]),
                "long_positions": int(self.long_positions[i]),
                "short_positions": int(self.short_positions[i]),
            }
            for i in range(self.level_price.shape[0])
        ]
        return {
            "start_price": self.start_price,
            "long_total_usd": self.long_total_usd,
            "short_total_usd": self.short_total_usd,
            "long_beyond_usd": self.long_beyond_usd,
            "short_beyond_usd": self.short_beyond_usd,
            "long_never_usd": self.long_never_usd,
            "long_at_start_usd": self.long_at_start_usd,
            "short_at_start_usd": self.short_at_start_usd,
            "levels": levels,
        }


@dataclass(frozen=True)
class LiquidationMap:
    scenario: str
    range_fraction: float
    bins: int
    positions: int
    markets: tuple[MarketMap, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "range": self.range_fraction,
            "bins_per_side": self.bins,
            "positions": self.positions,
            "notional": "USD at the start price",
            "markets": {m.key: m.to_dict() for m in self.markets},
        }

    def columns(self) -> dict[str, list[Any]]:
        """One row per market and level (the Parquet table's columns)."""
        cols: dict[str, list[Any]] = {
            name: []
            for name in (
                "venue",
                "market",
                "start_price",
                "level",
                "price_low",
                "price_high",
                "level_price",
                "pct_from_start",
                "long_usd",
                "long_cum_usd",
                "short_usd",
                "short_cum_usd",
                "long_positions",
                "short_positions",
            )
        }
        step = self.range_fraction / self.bins
        for mm in self.markets:
            n = mm.level_price.shape[0]
            for i in range(n):
                level = self.bins - i if i < self.bins else -(i - self.bins + 1)  # +bins..+1, then -1..-bins
                inner = mm.start_price * (1 + np.sign(level) * (abs(level) - 1) * step)
                outer = float(mm.level_price[i])
                cols["venue"].append(mm.venue)
                cols["market"].append(mm.key)
                cols["start_price"].append(mm.start_price)
                cols["level"].append(level)
                cols["price_low"].append(min(inner, outer))
                cols["price_high"].append(max(inner, outer))
                cols["level_price"].append(outer)
                cols["pct_from_start"].append(float(mm.pct_from_start[i]))
                for name in ("long_usd", "long_cum_usd", "short_usd", "short_cum_usd"):
                    cols[name].append(float(getattr(mm, name)[i]))
                cols["long_positions"].append(int(mm.long_positions[i]))
                cols["short_positions"].append(int(mm.short_positions[i]))
        return cols


def liquidation_map(
    pop: InitialPopulation,
    scenario_name: str,
    bins: int = 10,
    range_fraction: float = 0.3,
    markets: list[str] | None = None,
) -> LiquidationMap:
    """Bin every position's liquidated notional by distance from its market's start price.

    ``bins``: levels on each side; ``range_fraction``: the map spans ``start x (1 -+ range)``; ``markets``: keep
    only these ``venue:SYMBOL`` keys (default: every market holding a position).
    """
    if bins < 1:
        raise UsageError(f"--bins must be at least 1 (got {bins})")
    if not 0 < range_fraction < 1:
        raise UsageError(f"--range must be between 0 and 1, a fraction of the start price (got {range_fraction:g})")
    if markets:
        unknown = [k for k in markets if k not in pop.market_keys]
        if unknown:
            raise UsageError(f"--market {', '.join(unknown)}: not a perpetual of the scenario "
                             f"({', '.join(pop.market_keys)})")  # fmt: skip
    crowd = pop.crowd
    liq = position_liquidation_prices(pop)
    wanted = markets or [pop.market_keys[int(m)] for m in np.unique(crowd.market)]
    step = range_fraction / bins
    out = []
    for key in wanted:
        m = pop.market_keys.index(key)
        sel = crowd.market == m
        start = float(pop.start_price[m])
        lots = crowd.size_lots[sel]
        notional = np.abs(lots) * pop.lot_size[m] * start
        price = liq[sel]
        if np.isnan(price).any():
            raise AssertionError(f"{key}: a liquidation price has no solution (a bug in the tier solve)")
        long, short = lots > 0, lots < 0
        # distance from the start in levels: a long at price p sits in level ceil((1 - p/S) / step)
        with np.errstate(divide="ignore", invalid="ignore"):
            dist = np.where(long, 1.0 - price / start, price / start - 1.0)
        never = long & (price <= 0)
        at_start = (dist <= 0) & ~never
        level = np.maximum(1, np.ceil(dist / step - 1e-12)).astype(np.int64)
        inside = ~never & (level <= bins)
        beyond = ~never & (level > bins)
        long_usd = np.bincount(level[long & inside] - 1, weights=notional[long & inside], minlength=bins)
        short_usd = np.bincount(level[short & inside] - 1, weights=notional[short & inside], minlength=bins)
        long_n = np.bincount(level[long & inside] - 1, minlength=bins).astype(np.int64)
        short_n = np.bincount(level[short & inside] - 1, minlength=bins).astype(np.int64)
        k = np.arange(1, bins + 1)
        # arrays run from the highest price down: short levels bins..1, then long levels 1..bins
        level_price = np.concatenate([start * (1 + k[::-1] * step), start * (1 - k * step)])
        pct = np.concatenate([k[::-1] * step, -k * step])
        zeros = np.zeros(bins)
        out.append(
            MarketMap(
                key=key,
                start_price=start,
                level_price=level_price,
                pct_from_start=pct,
                long_usd=np.concatenate([zeros, long_usd]),
                long_cum_usd=np.concatenate([zeros, np.cumsum(long_usd)]),
                short_usd=np.concatenate([short_usd[::-1], zeros]),
                short_cum_usd=np.concatenate([np.cumsum(short_usd)[::-1], zeros]),
                long_positions=np.concatenate([np.zeros(bins, np.int64), long_n]),
                short_positions=np.concatenate([short_n[::-1], np.zeros(bins, np.int64)]),
                long_total_usd=math.fsum(notional[long]),
                short_total_usd=math.fsum(notional[short]),
                long_beyond_usd=math.fsum(notional[long & beyond]),
                short_beyond_usd=math.fsum(notional[short & beyond]),
                long_never_usd=math.fsum(notional[never]),
                long_at_start_usd=math.fsum(notional[long & at_start]),
                short_at_start_usd=math.fsum(notional[short & at_start]),
            )
        )
    return LiquidationMap(scenario_name, range_fraction, bins, int(crowd.market.shape[0]), tuple(out))


def map_figure_html(lmap: LiquidationMap) -> str:
    """A self-contained HTML page (Plotly, ``report`` extra): per market, liquidated notional per level as bars
    (longs red below the start, shorts green above) and the cumulative totals as lines."""
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:
        raise UsageError(
            "the map's picture needs plotly: pip install 'perpstress[report]' (or pass --no-picture)"
        ) from None
    n = len(lmap.markets)
    fig = make_subplots(
        rows=max(n, 1),
        cols=1,
        subplot_titles=[f"{m.key}: start {m.start_price:,.6g}" for m in lmap.markets],
        specs=[[{"secondary_y": True}] for _ in range(max(n, 1))],
        vertical_spacing=min(0.08, 0.5 / max(n, 1)),
    )
    width = lmap.range_fraction / lmap.bins
    for row, mm in enumerate(lmap.markets, start=1):
        mid = mm.start_price * (1 + mm.pct_from_start - np.sign(mm.pct_from_start) * width / 2)
        bar_width = mm.start_price * width * 0.9
        first = row == 1
        fig.add_trace(go.Bar(x=mid, y=mm.long_usd, name="longs liquidated", marker_color="#d62728",
                             width=bar_width, legendgroup="long", showlegend=first), row=row, col=1)  # fmt: skip
        fig.add_trace(go.Bar(x=mid, y=mm.short_usd, name="shorts liquidated", marker_color="#2ca02c",
                             width=bar_width, legendgroup="short", showlegend=first), row=row, col=1)  # fmt: skip
        below = mm.pct_from_start < 0
        fig.add_trace(go.Scatter(x=np.concatenate([[mm.start_price], mm.level_price[below]]),
                                 y=np.concatenate([[0.0], mm.long_cum_usd[below]]), mode="lines",
                                 name="longs, cumulative", line={"color": "#d62728", "dash": "dot"},
                                 legendgroup="long_cum", showlegend=first),
                      row=row, col=1, secondary_y=True)  # fmt: skip
        above = ~below  # short levels run from the highest price down: reverse them to walk out from the start
        fig.add_trace(go.Scatter(x=np.concatenate([[mm.start_price], mm.level_price[above][::-1]]),
                                 y=np.concatenate([[0.0], mm.short_cum_usd[above][::-1]]), mode="lines",
                                 name="shorts, cumulative", line={"color": "#2ca02c", "dash": "dot"},
                                 legendgroup="short_cum", showlegend=first),
                      row=row, col=1, secondary_y=True)  # fmt: skip
        fig.add_vline(x=mm.start_price, line_color="#555", line_dash="dash", row=row, col=1)
        fig.update_yaxes(title_text="USD per level", row=row, col=1, secondary_y=False)
        fig.update_yaxes(title_text="cumulative USD", row=row, col=1, secondary_y=True)
    fig.update_layout(
        title=f"Liquidation map: {lmap.scenario} ({lmap.positions:,} positions; notional at the start price)",
        barmode="overlay",
        height=max(420, 320 * n),
        template="plotly_white",
    )
    html: str = fig.to_html(include_plotlyjs=True, full_html=True)
    return html


__all__ = [
    "InitialPopulation",
    "LiquidationMap",
    "MarketMap",
    "initial_population",
    "liquidation_map",
    "map_figure_html",
    "position_liquidation_prices",
]
