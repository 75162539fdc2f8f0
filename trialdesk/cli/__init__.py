"""The ``trialdesk`` command line: a thin layer over the domain core.

Exit codes (also in docs/cli.md):

== ================================================================
0  success (for ``screen``: the record was evaluated; see ``decision``)
1  any other TrialDesk error
2  usage error (unknown option, missing argument)
3  input rejected: unreadable JSON, impossible value, likely wrong unit
4  protocol file missing or invalid
== ================================================================

Errors print as ``CODE: message`` on standard error (``--json``: one JSON object).
"""

from trialdesk.cli import (
    analysis,  # noqa: F401
    clinical,  # noqa: F401  (registers the commands)
    demo,  # noqa: F401  (demo seed)
    design,  # noqa: F401  (design boundaries)
    export,  # noqa: F401  (ODM 1.3.2 / long CSV export of the trial record)
    prescreen,  # noqa: F401  (retrospective feasibility)
    randlist,  # noqa: F401
    report,  # noqa: F401  (trial report)
    web,  # noqa: F401  (database commands)
)
from trialdesk.cli.base import (
    EXIT_ERROR,
    EXIT_INPUT,
    EXIT_OK,
    EXIT_PROTOCOL,
    EXIT_USAGE,
    app,
    exit_code,
)

__all__ = ["EXIT_ERROR", "EXIT_INPUT", "EXIT_OK", "EXIT_PROTOCOL", "EXIT_USAGE", "app",
           "exit_code"]
