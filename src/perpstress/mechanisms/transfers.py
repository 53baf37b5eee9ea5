"""Transfer rails: collateral moving between venues takes time, queues, and congests under stress.

Rule (perpstress.config.rails): a transfer leaves its source account when requested, waits in its route's FIFO
queue until the route's token bucket (``capacity_usd_per_s`` per second, divided by the stress factor) covers it,
then travels for a log-normal latency (calm median times the stress factor times any disruption multiplier) and
lands in the destination account. Queued and travelling money is *in transit*: it belongs to no account, and the
money-conservation check counts it. A halted route sends nothing but keeps queueing.

Assumptions: transfers are whole (no partial sends); the bucket holds at most one second of capacity or the head
transfer, whichever is larger, so a transfer bigger than a second's capacity waits until enough has accrued;
latency draws come from the run's generator in send order, so runs stay deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from perpstress.config.rails import RailsConfig, TransferRail
from perpstress.state.clock import Clock
from perpstress.state.events import EventColumns
from perpstress.state.world import CROWD, World


@dataclass
class TransferRecord(EventColumns):
    """One row per transfer; ``landed_ms`` is -1 while it has not landed."""

    ts_ms: list[int] = field(default_factory=list)
    transfer: list[int] = field(default_factory=list)
    owner: list[int] = field(default_factory=list)
    src_venue: list[int] = field(default_factory=list)
    dst_venue: list[int] = field(default_factory=list)
    src_account: list[int] = field(default_factory=list)
    dst_account: list[int] = field(default_factory=list)
    usd: list[float] = field(default_factory=list)
    sent_ms: list[int] = field(default_factory=list)
    landed_ms: list[int] = field(default_factory=list)
    purpose: list[str] = field(default_factory=list)


@dataclass
class _Route:
    rail: TransferRail
    queue: deque[int] = field(default_factory=deque)
    bucket: float = 0.0


class TransferRails:
    """Queues, in-flight transfers and their record. ``credit(account, usd)`` pays a landed transfer."""

    def __init__(self, config: RailsConfig, venue_names: list[str], start_ms: int, rng: np.random.Generator) -> None:
        self.config = config
        self.venue_names = venue_names
        self.start_ms = start_ms
        self.rng = rng
        self.record = TransferRecord()
        self._routes: dict[tuple[int, int], _Route] = {}
        self._flying: list[tuple[int, int]] = []  # (lands_ms, transfer id), kept sorted by landing time then id
        self.in_transit_usd = 0.0
        self.pending_by_account: dict[int, float] = {}
        """USD on its way to each destination account."""

    def route(self, src: int, dst: int) -> _Route:
        key = (src, dst)
        if key not in self._routes:
            self._routes[key] = _Route(self.config.route(self.venue_names[src], self.venue_names[dst]))
        return self._routes[key]

    def request(self, ts_ms: int, owner: int, src_venue: int, dst_venue: int, src_account: int, dst_account: int,
                usd: float, purpose: str) -> int:  # fmt: skip
        """Queue a transfer of ``usd`` (already debited from the source by the caller); returns its id."""
        tid = len(self.record.usd)
        self.record.add(ts_ms, tid, owner, src_venue, dst_venue, src_account, dst_account, usd, -1, -1, purpose)
        self.route(src_venue, dst_venue).queue.append(tid)
        self.in_transit_usd += usd
        self.pending_by_account[dst_account] = self.pending_by_account.get(dst_account, 0.0) + usd
        return tid

    def _window(self, rail: TransferRail, ts_ms: int) -> tuple[float, bool]:
        t = (ts_ms - self.start_ms) / 1000.0
        mult, halted = 1.0, False
        for d in rail.disruptions:
            if d.from_s <= t < d.to_s:
                mult = max(mult, d.latency_multiplier)
                halted = halted or d.halted
        return mult, halted

    def advance(self, ts_ms: int, step_s: float, stress: float, credit: Callable[[int, float], None]) -> None:
        """Send what the routes can carry this step, then land everything due by ``ts_ms``."""
        rec = self.record
        for (_src, _dst), route in sorted(self._routes.items()):
            rail = route.rail
            mult, halted = self._window(rail, ts_ms)
            factor = 1.0 + rail.congestion * stress
            if halted:
                continue
            rate = rail.capacity_usd_per_s / factor
            head = rec.usd[route.queue[0]] if route.queue else 0.0
            route.bucket = min(route.bucket + rate * step_s, max(rate, head))
            while route.queue and rec.usd[route.queue[0]] <= route.bucket + 1e-9:
                tid = route.queue.popleft()
                route.bucket -= rec.usd[tid]
                latency = (
                    rail.latency_median_s
                    * factor
                    * mult
                    * float(np.exp(rail.latency_sigma * self.rng.standard_normal()))
                )
                rec.sent_ms[tid] = ts_ms
                self._flying.append((ts_ms + round(latency * 1000), tid))
            if not route.queue:
                route.bucket = min(route.bucket, rate)
        self._flying.sort()
        while self._flying and self._flying[0][0] <= ts_ms:
            _lands, tid = self._flying.pop(0)
            usd = rec.usd[tid]
            rec.landed_ms[tid] = ts_ms
            self.in_transit_usd -= usd
            dst = rec.dst_account[tid]
            self.pending_by_account[dst] -= usd
            if self.pending_by_account[dst] <= 1e-9:
                del self.pending_by_account[dst]
            credit(dst, usd)

    def nominal_latency_s(self, tid: int) -> float:
        rec = self.record
        return self.route(rec.src_venue[tid], rec.dst_venue[tid]).rail.latency_median_s

    def summary(self, end_ms: int) -> dict[str, float | int]:
        """``count``, ``delayed_count`` (took, or has been waiting, ``delayed_multiple`` x the calm median or
        more), ``max_delay_s`` (requested to landed, or to the run's end when still in transit), ``landed``."""
        rec = self.record
        delays = []
        delayed = 0
        for tid in range(len(rec.usd)):
            end = rec.landed_ms[tid] if rec.landed_ms[tid] >= 0 else end_ms
            d = (end - rec.ts_ms[tid]) / 1000.0
            delays.append(d)
            if d >= self.config.delayed_multiple * self.nominal_latency_s(tid):
                delayed += 1
        return {
            "count": len(rec.usd),
            "landed": int(sum(1 for x in rec.landed_ms if x >= 0)),
            "delayed_count": delayed,
            "max_delay_s": float(max(delays)) if delays else 0.0,
            "usd": float(sum(rec.usd)),
            "in_transit_at_end_usd": float(self.in_transit_usd),
        }


class TransfersPhase:
    """The rails advance one step (stress = 1 - appetite); money that lands is credited to its account, and crowd
    accounts credited are re-banded (``reband``)."""

    def __init__(self, world: World, reband: Callable[[np.ndarray], None]) -> None:
        self.world = world
        self._reband = reband

    def __call__(self, clock: Clock) -> None:
        w = self.world
        landed: list[int] = []

        def credit(account: int, usd: float) -> None:
            w.accounts.wallet[account] += usd
            landed.append(account)

        w.rails.advance(clock.ts_ms, clock.step_s, 1.0 - w.appetite, credit)
        crowd = [a for a in landed if w.kind[a] == CROWD]
        if crowd:
            self._reband(np.array(crowd, dtype=np.int64))
