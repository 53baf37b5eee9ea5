"""Layer 4: the kernel (clock, fixed step order, the run's generator) and the simulation built on it."""
