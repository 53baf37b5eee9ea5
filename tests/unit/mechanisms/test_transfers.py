"""Transfer rails: FIFO queues, capacity per second, latency growing with stress, halts, money in transit."""

from __future__ import annotations

import numpy as np
import pytest

from perpstress.config.rails import RailDisruption, RailsConfig, TransferRail
from perpstress.mechanisms.transfers import TransferRails

START = 1_000_000


def rails(**route: object) -> TransferRails:
    rail = TransferRail(latency_sigma=0.0, **route)  # type: ignore[arg-type]
    return TransferRails(RailsConfig(default=rail), ["a", "b"], START, np.random.default_rng(0))


def run(r: TransferRails, seconds: int, stress: float = 0.0) -> dict[int, float]:
    """Advance ``r`` by ``seconds`` one-second steps from where it stopped; returns what landed, by account."""
    landed: dict[int, float] = {}

    def credit(account: int, usd: float) -> None:
        landed[account] = landed.get(account, 0.0) + usd

    done = getattr(r, "_test_clock_s", 0)
    for s in range(done + 1, done + seconds + 1):
        r.advance(START + s * 1000, 1.0, stress, credit)
    r._test_clock_s = done + seconds  # type: ignore[attr-defined]
    return landed


def test_a_transfer_lands_after_its_latency_and_is_in_transit_until_then() -> None:
    r = rails(latency_median_s=10.0, capacity_usd_per_s=1e6, congestion=0.0)
    r.request(START, owner=1, src_venue=0, dst_venue=1, src_account=5, dst_account=6, usd=1_000.0, purpose="t")
    assert r.in_transit_usd == 1_000.0
    assert run(r, 10) == {}
    assert r.pending_by_account == {6: 1_000.0}
    assert run(r, 2) == {6: 1_000.0}
    assert r.in_transit_usd == 0.0
    assert r.record.landed_ms[0] - r.record.ts_ms[0] == pytest.approx(11_000, abs=1_000)


def test_capacity_queues_transfers_in_order() -> None:
    r = rails(latency_median_s=1.0, capacity_usd_per_s=1_000.0, congestion=0.0)
    for i in range(3):
        r.request(START, 1, 0, 1, 5, 10 + i, 1_000.0, "t")
    run(r, 5)
    sent = r.record.sent_ms
    assert sent[0] < sent[1] < sent[2]  # one second of capacity each, first come first served


def test_stress_slows_and_a_halt_stops_a_route() -> None:
    calm = rails(latency_median_s=10.0, congestion=4.0)
    calm.request(START, 1, 0, 1, 5, 6, 100.0, "t")
    run(calm, 60, stress=0.0)
    stressed = rails(latency_median_s=10.0, congestion=4.0)
    stressed.request(START, 1, 0, 1, 5, 6, 100.0, "t")
    run(stressed, 60, stress=1.0)
    delay = [x.record.landed_ms[0] - x.record.ts_ms[0] for x in (calm, stressed)]
    assert delay[1] >= 4.5 * delay[0]  # latency x (1 + congestion)

    halted = rails(latency_median_s=1.0, disruptions=(RailDisruption(from_s=0, to_s=30, halted=True),))
    halted.request(START, 1, 0, 1, 5, 6, 100.0, "t")
    run(halted, 29)
    assert halted.record.sent_ms[0] == -1
    run(halted, 5)
    assert halted.record.landed_ms[0] >= START + 30_000


def test_summary_counts_delays_against_the_calm_median() -> None:
    r = rails(latency_median_s=10.0, congestion=4.0)
    r.request(START, 1, 0, 1, 5, 6, 100.0, "t")
    run(r, 120, stress=1.0)
    s = r.summary(START + 120_000)
    assert s["count"] == 1
    assert s["landed"] == 1
    assert s["delayed_count"] == 1  # about 5x its calm median, beyond the 3x threshold
    assert 45 <= s["max_delay_s"] <= 60
