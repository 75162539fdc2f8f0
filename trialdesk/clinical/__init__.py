"""Clinical core: pure functions and small value types for bedside questions.

Units are in names (``map_mmhg``) or types; nothing here imports the web layer.
"""
