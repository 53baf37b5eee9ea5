"""Agents acting on the World: market makers, noise takers, the crowd's stops and top-ups, arbitrage and hedging."""
