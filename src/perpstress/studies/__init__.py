"""Studies: analyses built on perpstress's rules and sweeps, checked against published results.

``adl_waves``: a replay of Hyperliquid's 16 ADL waves of 2025-10-10 from Chitra et al.'s published outputs.
"""
