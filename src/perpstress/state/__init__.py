"""Layer 2: simulation state as structures of arrays indexed by integer ids."""
