"""Membership tests over ids below a fixed bound, without sorting: a boolean scratch array set for the members,
read for the values and cleared again, so it is all False between calls (``np.isin`` sorts both sides every call;
the cascade and ADL ask this every round of a crash step)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


class Membership:
    """``outside(values, members)``: which of ``values`` are not among ``members`` (ids in ``[0, n)``)."""

    def __init__(self, n: int) -> None:
        self._marked = np.zeros(n, dtype=np.bool_)

    def outside(self, values: np.ndarray, members: np.ndarray) -> NDArray[np.bool_]:
        marked = self._marked
        marked[members] = True
        out: NDArray[np.bool_] = ~marked[values]
        marked[members] = False
        return out
