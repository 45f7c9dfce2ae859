"""Placeholder for the nn family (filled in by the neural-network work).

May import: dezero_xp.core, dezero_xp._shape and the other families of dezero_xp.functions.
"""

__all__: list[str] = []
