"""Layer 5: populations of accounts built from configuration (and, later, from public aggregates or a file)."""
