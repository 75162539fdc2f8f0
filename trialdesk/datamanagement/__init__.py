"""Data management rules (pure domain core): the query workflow and electronic signatures.

* :mod:`.queries` — the query state machine (open → answered → closed, reopen).
* :mod:`.signatures` — signature meanings (21 CFR 11.50) and the record digest that
  links a signature to the content signed (21 CFR 11.70).
"""
