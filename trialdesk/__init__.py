"""TrialDesk: run a randomized clinical trial end to end.

The domain core (``protocol``, ``clinical``, ``eligibility`` …) is pure Python and
never imports the web layer; ``trialdesk.web`` (Django) and ``trialdesk.cli`` (Typer)
are thin entry points over it.
"""

__version__ = "0.1.0"
