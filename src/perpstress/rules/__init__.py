"""Layer 1: the venues' rules as pure functions over arrays.

No state, no configuration objects, no venue names: each function takes NumPy arrays (or scalars, which behave
as 0-d arrays) and returns arrays. A venue's behaviour is the choice of function plus the numbers from its preset.
"""
