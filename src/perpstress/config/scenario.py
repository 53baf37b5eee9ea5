"""Scenario files: TOML validated into a frozen :class:`Scenario`, with errors that name file, field and rule.

A scenario names its venues (each usually a ``preset`` plus overrides), the run's clock and seed. Later layers
(crowd, shock, agents, rails) add their own sections here.
"""

from __future__ import annotations

import json
import math
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import tomli_w
from pydantic import Field, ValidationError, field_validator, model_validator

from perpstress.config.agents import (
    ArbitrageConfig,
    HedgedBook,
    MakerHedge,
    MarketMakerConfig,
    NoiseTakerConfig,
    RestingOrdersConfig,
)
from perpstress.config.base import DocumentError, FrozenModel, rule_error
from perpstress.config.flow import CrowdFlowConfig
from perpstress.config.population import CrowdConfig, PopulationConfig
from perpstress.config.rails import RailsConfig
from perpstress.config.shock import ShockConfig, WiderMarketConfig
from perpstress.config.venue import CollateralMethod, VenueConfig, deep_merge, drop_none
from perpstress.errors import ConfigError, PerpstressError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
"""A scenario's name: it becomes a directory name, so no separators, no leading dot, no ``..``."""

MAX_SCALE = 1000.0
"""``--scale`` at most this (it multiplies the crowd's accounts)."""
MAX_ESTIMATED_BYTES = 48e9
"""A run whose estimated memory exceeds this is refused before it starts (see :meth:`Scenario.size_problems`)."""
BYTES_PER_ACCOUNT = 600
"""Measured: the full-scale oct-2025 run (2.0M accounts) peaks at 1.0 GB resident, about 500 bytes an account."""
BYTES_PER_MARKET_STEP = 16 * 8
"""The time series: about 16 float columns per market and step."""


class EngineConfig(FrozenModel):
    """How the engine runs a step."""

    max_cascade_rounds: int = Field(10, ge=1, le=1000, description="liquidation rounds within one step at most")
    fund_unwind_fraction: float = Field(
        0.05, gt=0, le=1, description="share of a fund's taken-over inventory it sells into the book each step"
    )
    record_trades: bool = Field(False, description="write events/trades.parquet (large)")
    book_capacity: int = Field(256, ge=8, le=100_000, description="resting orders per market side")
    invariant_interval_s: float = Field(
        600.0,
        gt=0,
        description="simulated seconds between full invariant recounts (money, open interest, "
        "collateral units); they are also checked at the last step",
    )
    check_every_step: bool = Field(False, description="recount every invariant every step (slow; for tests)")
    forced_flow: Literal["book", "absorbed_at_mark"] = Field(
        "book",
        description="where forced orders go: 'book' (liquidation orders, funds' unwinds and collateral sales walk "
        "the order books) or 'absorbed_at_mark' (the counterfactual without forced flow: an outside absorber "
        "fills them at the mark, within their limits; accounts are still closed and settled)",
    )
    collateral_band_cushion: float = Field(
        0.02,
        ge=0,
        lt=0.5,
        description="collateral holders' trigger bands allow for this fall in the collateral's "
        "price before they are re-banded (changes the cost of a step, not its outcome)",
    )


class Scenario(FrozenModel):
    """A run's whole configuration; ``stable_hash()`` keys results by it."""

    name: str = Field(
        min_length=1,
        max_length=64,
        pattern=NAME_PATTERN,
        description="short name used in outputs (the default run directory is runs/NAME-seedN): letters, digits, "
        "'.', '_' and '-', starting with a letter or digit; a name, not a path",
    )
    description: str = ""
    seed: int = Field(0, ge=0, description="seed of the run's random generator")
    population_seed: int | None = Field(
        None,
        ge=0,
        description="seed of the starting population's own generator: the crowd and hedged owners are then the "
        "same for every run seed (a sweep draws them once and shares them); unset, they are drawn from the run's "
        "generator, a new crowd per seed",
    )
    start: datetime = Field(description="simulated start time, UTC")
    duration_s: float = Field(gt=0, description="simulated seconds")
    step_ms: int = Field(1000, gt=0, description="length of one step, milliseconds")
    venues: dict[str, VenueConfig] = Field(min_length=1)
    shock: ShockConfig | None = Field(None, description="the exogenous news; none means calm index paths")
    wider_market: WiderMarketConfig | None = Field(
        None,
        description="the market outside the venues moved by their net taker flow (none: the fundamental value is "
        "the exogenous path alone)",
    )
    crowd: CrowdConfig = Field(default_factory=CrowdConfig)
    population: PopulationConfig | None = Field(
        None, description="a crowd generated from public aggregates (besides or instead of crowd.markets)"
    )
    flow: CrowdFlowConfig = Field(
        default_factory=CrowdFlowConfig, description="crowd accounts opening positions during the run (off: no markets)"
    )
    makers: MarketMakerConfig | None = Field(None, description="market makers quoting every market")
    takers: NoiseTakerConfig = Field(default_factory=NoiseTakerConfig)
    resting: RestingOrdersConfig | None = Field(
        None, description="limit orders resting beyond the makers' ladders, posted once (none: no such orders)"
    )
    arbitrage: ArbitrageConfig = Field(default_factory=ArbitrageConfig, description="basis and cross-venue traders")
    hedgers: tuple[HedgedBook, ...] = Field((), description="owners hedged across two venues")
    rails: RailsConfig = Field(default_factory=RailsConfig, description="transfer routes between venues")
    engine: EngineConfig = Field(default_factory=EngineConfig)

    @field_validator("start")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    @model_validator(mode="after")
    def _venue_keys_match(self) -> Self:
        for key, venue in self.venues.items():
            if key != venue.name:
                raise rule_error(f".venues.{key}.name", f"name {venue.name!r} differs from its key {key!r}")
        if self.duration_s * 1000 < self.step_ms:
            raise rule_error(".duration_s", f"duration {self.duration_s:g} s is shorter than one step")
        keys = {f"{v}:{s}" for v, venue in self.venues.items() for s in venue.markets()}
        spot_keys = {f"{v}:{s}" for v, venue in self.venues.items() for s in venue.spot_markets()}
        for key in self.crowd.markets:
            if key not in keys:
                raise rule_error(f".crowd.markets.{key}", f"no such market; the scenario has {', '.join(sorted(keys))}")
        self._check_multi_venue(keys, spot_keys)
        if self.population is not None:
            for key in self.population.markets:
                if key not in keys:
                    raise rule_error(
                        f".population.markets.{key}", f"no such market; the scenario has {', '.join(sorted(keys))}"
                    )
                if key in self.crowd.markets:
                    raise rule_error(f".population.markets.{key}", "also in crowd.markets: give a market one crowd")
        if self.shock is not None:
            bases = {m.base for venue in self.venues.values() for m in venue.markets().values()}
            bases |= {m.base for venue in self.venues.values() for m in venue.spot_markets().values()}
            for venue_name, shares in self.crowd.collateral.items():
                for asset in shares:
                    rule = self.venues[venue_name].collateral[asset]
                    bases.add(asset if rule.method is not CollateralMethod.CONVERSION_RATE else rule.underlying)
                    if rule.method is CollateralMethod.MIX and rule.underlying != "USDT":
                        bases.add(rule.underlying)
            bases.discard("USDT")
            missing = sorted(bases - set(self.shock.assets))
            if missing:
                raise rule_error(".shock.assets", f"no path for {', '.join(missing)} (every market's base needs one)")
        return self

    def _check_multi_venue(self, keys: set[str], spot_keys: set[str]) -> None:
        def known(key: str, where: str, pool: set[str]) -> None:
            if key not in pool:
                raise rule_error(where, f"no such market {key}; the scenario has {', '.join(sorted(pool)) or 'none'}")

        for key in self.takers.markets:
            known(key, f".takers.markets.{key}", keys | spot_keys)
        for key in self.flow.markets:
            known(key, f".flow.markets.{key}", keys)
        if self.makers is not None:
            for key in self.makers.markets:
                known(key, f".makers.markets.{key}", keys | spot_keys)
            bases = {f"{v}:{s}": m.base for v, venue in self.venues.items() for s, m in venue.markets().items()}
            for i, mh in enumerate(self.makers.hedges):
                known(mh.market, f".makers.hedges[{i}].market", keys)
                known(mh.hedge, f".makers.hedges[{i}].hedge", keys)
                if mh.market.split(":")[0] == mh.hedge.split(":")[0]:
                    raise rule_error(f".makers.hedges[{i}].hedge", f"{mh.hedge} is on {mh.market}'s venue")
                if bases[mh.market] != bases[mh.hedge]:
                    raise rule_error(f".makers.hedges[{i}].hedge",
                                     f"{mh.hedge} is not {bases[mh.market]} ({mh.market}'s asset)")  # fmt: skip
            _no_hedge_loop(self.makers.hedges)
        for i, b in enumerate(self.arbitrage.basis):
            known(b.perpetual, f".arbitrage.basis[{i}].perpetual", keys)
            known(b.spot, f".arbitrage.basis[{i}].spot", spot_keys)
            if b.perpetual.split(":")[0] != b.spot.split(":")[0]:
                raise rule_error(f".arbitrage.basis[{i}].spot", f"{b.spot} is not on {b.perpetual}'s venue")
        for i, c in enumerate(self.arbitrage.cross_venue):
            for leg in c.legs:
                known(leg, f".arbitrage.cross_venue[{i}].legs", keys)
            if c.legs[0].split(":")[0] == c.legs[1].split(":")[0]:
                raise rule_error(f".arbitrage.cross_venue[{i}].legs", "the two legs are on the same venue")
        for i, h in enumerate(self.hedgers):
            known(h.long, f".hedgers[{i}].long", keys)
            known(h.short, f".hedgers[{i}].short", keys)
        for route in self.rails.routes:
            ends = route.split("->")
            if len(ends) != 2 or any(e not in self.venues for e in ends):
                raise rule_error(
                    f".rails.routes.{route}",
                    f'route must be "from->to" between venues of the scenario ({", ".join(self.venues)})',
                )
        for venue_name, shares in self.crowd.collateral.items():
            if venue_name not in self.venues:
                raise rule_error(f".crowd.collateral.{venue_name}", f"no such venue ({', '.join(self.venues)})")
            venue = self.venues[venue_name]
            if sum(shares.values()) > 1 + 1e-12:
                raise rule_error(f".crowd.collateral.{venue_name}", "shares add up to more than 1")
            for asset, share in shares.items():
                where = f".crowd.collateral.{venue_name}.{asset}"
                if not 0 <= share <= 1:
                    raise rule_error(where, f"share {share:g} must be within [0, 1]")
                if asset not in venue.collateral:
                    accepted = ", ".join(sorted(venue.collateral)) or "none"
                    raise rule_error(where, f"{venue_name} has no collateral rule for {asset} (accepted: {accepted})")
                rule = venue.collateral[asset]
                on_book = rule.method in (CollateralMethod.OWN_BOOK, CollateralMethod.MIX)
                if on_book and rule.spot_symbol is not None and rule.spot_symbol not in venue.spot_symbols:
                    raise rule_error(
                        where,
                        f"{venue_name} prices {asset} off its {rule.spot_symbol} book: add it to "
                        f"venues.{venue_name}.spot_symbols",
                    )

    def with_(self, **changes: Any) -> Self:
        """A copy with ``changes`` (``a__b=1`` sets ``a.b``), validated like a file; errors raise ConfigError."""
        try:
            return super().with_(**changes)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, f"{self.name} (with_)")) from None
        except DocumentError as exc:
            raise ConfigError([f"{self.name} (with_): {exc.path}: {exc.message}"]) from None

    def run_problems(self, scale: float = 1.0) -> list[str]:
        """Why this valid scenario cannot be run at ``scale`` (empty when it can): what a run needs beyond
        validation, and an estimate of its size. ``check`` and ``run`` both ask, so they agree."""
        problems = []
        if self.shock is None:
            problems.append("shock: a run needs a [shock] section (it sets the start prices and the news)")
        if self.makers is None:
            problems.append("makers: a run needs a [makers] section (books need liquidity)")
        if not (math.isfinite(scale) and 0 < scale <= MAX_SCALE):
            problems.append(f"--scale {scale:g}: must be above 0 and at most {MAX_SCALE:g}")
            return problems
        markets = sum(len(v.markets()) + len(v.spot_markets()) for v in self.venues.values())
        crowd = sum(m.accounts for m in self.crowd.markets.values())
        crowd += self.population.accounts if self.population is not None else 0
        crowd += sum(f.accounts for f in self.flow.markets.values()) if self.flow.enabled else 0  # dormant pools
        makers = markets * (self.makers.per_market if self.makers is not None else 0)
        accounts = crowd * scale + makers + 2 * len(self.hedgers)
        size = BYTES_PER_ACCOUNT * accounts + BYTES_PER_MARKET_STEP * markets * self.steps
        if size > MAX_ESTIMATED_BYTES:
            problems.append(
                f"(size): about {accounts:,.0f} accounts and {self.steps:,} steps of {markets} markets would need "
                f"about {size / 1e9:,.0f} GB (at most {MAX_ESTIMATED_BYTES / 1e9:,.0f} GB is run); lower --scale, "
                "the accounts or duration_s"
            )
        return problems

    @property
    def steps(self) -> int:
        return int(self.duration_s * 1000 // self.step_ms)

    @property
    def ts_start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    def to_toml(self) -> str:
        """The resolved scenario as TOML (every preset value written out), loadable again."""
        return tomli_w.dumps(drop_none(self.model_dump(mode="json")))

    @classmethod
    def from_toml(cls, text: str, filename: str = "<string>", base_dir: Path | None = None) -> Scenario:
        """Validate scenario TOML. ``extends = "NAME"`` (a built-in scenario, or a file relative to ``base_dir``)
        starts from that scenario's file: this one's tables merge into its tables key by key, values replace."""
        data = extend(parse_toml(text, filename), filename, base_dir or Path.cwd(), ())
        return cls.from_dict(data, filename)

    @classmethod
    def from_dict(cls, data: dict[str, Any], filename: str = "<dict>") -> Scenario:
        """Validate ``data``; any problem raises :class:`ConfigError` naming ``filename`` and the field path."""
        venues = data.get("venues")
        if isinstance(venues, dict):
            for key, venue in venues.items():
                if isinstance(venue, dict):
                    venue.setdefault("name", key)
        try:
            return cls.validate_document(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, filename)) from None
        except DocumentError as exc:
            raise ConfigError([f"{filename}: {exc.path}: {exc.message}"]) from None
        except PerpstressError as exc:  # an unknown preset raised inside validation
            raise ConfigError([f"{filename}: {exc}"]) from None

    @classmethod
    def load(cls, source: str | Path) -> Scenario:
        """Load a scenario file, or a built-in scenario by name (``perpstress scenarios`` lists them)."""
        from perpstress.presets import available_scenarios, scenario_text

        path = Path(source)
        if path.suffix == ".toml" or path.exists():
            if not path.is_file():
                raise ConfigError([f"{path}: no such scenario file"])
            return cls.from_toml(read_text_file(path, "scenario file"), str(path), path.parent)
        name = str(source)
        if name in available_scenarios():
            return cls.from_toml(scenario_text(name), f"built-in scenario {name}")
        raise ConfigError(
            [f"{name}: neither a scenario file nor a built-in scenario ({', '.join(available_scenarios())})"]
        )


MAX_FILE_BYTES = 16_000_000
"""A configuration file larger than this is refused before it is parsed."""


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of a configuration file; problems raise :class:`ConfigError` naming the file."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError([f"{path}: {what} of {size:,} bytes; at most {MAX_FILE_BYTES:,} are read"])
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        problem = f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the {what} as UTF-8"
        raise ConfigError([problem]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the {what}: {exc.strerror or exc}"]) from None


def parse_toml(text: str, filename: str) -> dict[str, Any]:
    """Parsed TOML; invalid or absurdly nested text raises :class:`ConfigError` naming the file."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{filename}: not valid TOML: {exc}"]) from None
    except RecursionError:
        raise ConfigError([f"{filename}: not valid TOML: arrays or tables nested too deeply"]) from None


MAX_EXTENDS = 8
"""How deep ``extends`` may chain."""


def extend(data: dict[str, Any], filename: str, base_dir: Path, seen: tuple[str, ...]) -> dict[str, Any]:
    """``data`` merged over the scenario it ``extends`` (see :meth:`Scenario.from_toml`), recursively."""
    from perpstress.presets import available_scenarios, scenario_text

    base = data.get("extends")
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError([f"{filename}: extends: must name a built-in scenario or a scenario file (got {base!r})"])
    if base in seen or len(seen) >= MAX_EXTENDS:
        chain = " -> ".join((*seen, base))
        raise ConfigError([f"{filename}: extends: {chain}: a scenario cannot extend itself or chain beyond "
                           f"{MAX_EXTENDS}"])  # fmt: skip
    path = base_dir / base
    if base.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise ConfigError([f"{filename}: extends: no such scenario file {path}"])
        parent = extend(parse_toml(read_text_file(path, "scenario file"), str(path)), str(path), path.parent,
                        (*seen, base))  # fmt: skip
    elif base in available_scenarios():
        name = f"built-in scenario {base}"
        parent = extend(parse_toml(scenario_text(base), name), name, base_dir, (*seen, base))
    else:
        raise ConfigError(
            [f"{filename}: extends: {base!r} is neither a scenario file nor a built-in scenario "
             f"({', '.join(available_scenarios())})"]
        )  # fmt: skip
    own = {k: v for k, v in data.items() if k != "extends"}
    return deep_merge(parent, own)


def format_validation_error(exc: ValidationError, filename: str) -> list[str]:
    """One line per problem: ``FILE: dotted.path[i]: message (got VALUE)``."""
    lines = []
    for err in exc.errors(include_url=False):
        path = _dotted(err["loc"])
        ctx = err.get("ctx") or {}
        if err["type"] == "perpstress_rule":
            path += str(ctx.get("subpath", ""))
            message = str(ctx.get("message", err["msg"]))
        else:
            message = err["msg"]
            if err["type"] == "missing":
                message = "required field is missing"
            elif err["type"] == "extra_forbidden":
                message = "unknown field (check the spelling; `perpstress schema` lists the fields)"
            elif "input" in err and err["type"] not in {"model_type", "dict_type"}:
                message += f" (got {_short(err['input'])})"
        lines.append(f"{filename}: {path.lstrip('.') or '(top level)'}: {message}")
    return lines


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {
            "ioc_then_takeover",
            "tier_step_then_takeover",
            "market_then_backstop",
            "fillable_price_ioc",
            "keeper_takeover",
            "ranked_queue",
            "random_scan",
            "socialised_loss",
            "wealth_pro_rata",
            "capped_pro_rata",
            "risk_aware_pro_rata",
            "jump_regime",
            "replay",
        } or part.startswith("function-"):
            continue  # discriminated-union tags pydantic inserts into the path
        else:
            out += f".{part}"
    return out


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def scenario_json_schema() -> dict[str, Any]:
    """JSON Schema of scenario files. Venue tables may omit what their ``preset`` supplies, so inside ``venues``
    no field is marked required."""
    schema = Scenario.model_json_schema(mode="validation")
    venue_defs = _reachable(schema, "VenueConfig")
    for name in venue_defs:
        schema["$defs"][name].pop("required", None)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "perpstress scenario"
    return schema


def _reachable(schema: dict[str, Any], root: str) -> set[str]:
    defs = schema.get("$defs", {})
    seen: set[str] = set()
    stack = [root]
    while stack:
        name = stack.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        text = json.dumps(defs[name])
        stack.extend(part.split('"')[0] for part in text.split('"#/$defs/')[1:])
    return seen


def _no_hedge_loop(hedges: tuple[MakerHedge, ...]) -> None:
    """Refuse makers' hedges that lead back to a market already hedged: each hedge order is filled by the hedge
    market's makers, so when their hedges lead back to where the first makers quote, every fill returns as the next
    hedge, a loop of gain one that noise alone sets going."""
    onward: dict[str, list[str]] = {}
    for mh in hedges:
        onward.setdefault(mh.market, []).append(mh.hedge)
    for i, mh in enumerate(hedges):
        came_from = {mh.hedge: mh.market}
        todo = [mh.hedge]
        while todo:
            at = todo.pop()
            for nxt in onward.get(at, []):
                if nxt == mh.market:  # back where this hedge started: name the way round
                    path = [nxt, at]
                    while path[-1] != mh.market:
                        path.append(came_from[path[-1]])
                    raise rule_error(f".makers.hedges[{i}].hedge",
                                     f"{' -> '.join(reversed(path))}: each hedge fills the next market's makers, "
                                     "whose hedge comes back; hedge one way")  # fmt: skip
                if nxt not in came_from:
                    came_from[nxt] = at
                    todo.append(nxt)
