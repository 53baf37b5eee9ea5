"""The whole suite runs with every invariant recounted every step (engine.check_every_step's mode): a money or
open-interest slip fails the test that caused it at the step it happened, not at the next cadence."""

from __future__ import annotations

import os

from perpstress.engine.invariants import CHECK_EVERY_STEP_ENV

os.environ[CHECK_EVERY_STEP_ENV] = "1"  # inherited by the CLI subprocesses and sweep workers the tests start
