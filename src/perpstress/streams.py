"""Named random streams: one generator per mechanism, each a child of the run's ``SeedSequence`` keyed by a name.

A run's randomness comes from one seed, but no two mechanisms share a generator. Each draws from
``SeedSequence(seed, spawn_key=(key(name),))``, where ``key`` is a stable 64-bit hash of the stream's name (BLAKE2b
of the UTF-8 name), so a stream's numbers depend on the seed and its name only: not on which other streams exist,
in which order they were made, or how many numbers another mechanism drew. Two runs that differ in one rule (an ADL
rule, a fund size) therefore draw the same shock paths, the same crowd, the same noise-taker orders and the same
rail delays; their outcomes differ because of the rule, not because the rule shifted everybody's random numbers
(common random numbers, as a sweep's cells compare them).

The streams a run uses are listed in :data:`STREAMS`; asking for another name is an error, so a typo cannot make a
silently independent stream.
"""

from __future__ import annotations

import hashlib

import numpy as np

STREAMS: dict[str, str] = {
    "shock": "the exogenous paths: common factor and each asset's own noise (mechanisms.exogenous)",
    "population": "the crowd, the aggregate-built population and the hedged owners (population.initial)",
    "collateral": "which crowd accounts margin in non-USD collateral (population.initial)",
    "takers": "noise takers: order counts per market and step, sizes and sides",
    "rails": "transfer latency noise per transfer (mechanisms.transfers)",
    "adl": "the starting point of a pseudo-random ADL scan (dYdX v4)",
    "flow": "the crowd's flow during the run: order counts, sizes and leverage (mechanisms.agents.flow)",
    "flow_hold": "how long each flow position is held before its owner closes it (mechanisms.agents.flow)",
    "margin_calls": "each crowd account's delay in answering a margin call, and who never answers (engine.build)",
}
"""Every stream a run draws from, by name: what draws from it."""


def stream_key(name: str) -> int:
    """A stable 64-bit key for a stream's name: the first 8 bytes of BLAKE2b(name), little-endian."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little")


class RandomStreams:
    """The named generators of one run (or of one population seed). Each name yields one generator, made on first
    use and the same object afterwards, so a mechanism holds its own and nobody else draws from it."""

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._made: dict[str, np.random.Generator] = {}

    def sequence(self, name: str) -> np.random.SeedSequence:
        """The child ``SeedSequence`` of stream ``name``."""
        if name not in STREAMS:
            raise KeyError(f"no random stream named {name!r} (known: {', '.join(STREAMS)})")
        return np.random.SeedSequence(self.seed, spawn_key=(stream_key(name),))

    def get(self, name: str) -> np.random.Generator:
        """Stream ``name``'s generator (one per name and instance)."""
        if name not in self._made:
            self._made[name] = np.random.default_rng(self.sequence(name))
        return self._made[name]

    def fresh(self, name: str) -> np.random.Generator:
        """A new generator at the start of stream ``name``: the same numbers :meth:`get` gives a run, drawn again
        outside it (a population drawn beforehand, the liquidation map)."""
        return np.random.default_rng(self.sequence(name))
