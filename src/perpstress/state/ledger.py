"""Money outside accounts and funds: per venue, fees collected and bad debt; and the run's declared external flows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Ledger:
    """Money outside accounts and funds, per venue: fees collected, bad debt, external flows."""

    fee_pool: np.ndarray
    """USD collected in fees per venue (taker, maker and clearance fees)."""
    bad_debt: np.ndarray
    """USD per venue that no account or fund paid."""
    external_in: float = 0.0
    """USD that entered from outside the venues (crowd top-ups, collateral converted off-book)."""
