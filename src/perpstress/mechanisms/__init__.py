"""Layer 3: mechanisms acting on state (matching, margin checks, liquidation, insurance fund, ADL, funding)."""
