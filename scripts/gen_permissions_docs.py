"""Generate docs/permissions.md from the permission table (trialdesk/web/accounts/).

Run ``python scripts/gen_permissions_docs.py`` after changing PERMISSIONS or
DESCRIPTIONS; ``--check`` only compares (exit status 1 if the file is stale).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "permissions.md"


def main(argv: list[str] | None = None) -> int:
    # the test settings: importing the Role model needs Django, not a secret key
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "trialdesk.web.settings_test")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from trialdesk.web.accounts.permissions_doc import render

    args = sys.argv[1:] if argv is None else argv
    text = render()
    if args == ["--check"]:
        if OUTPUT.exists() and OUTPUT.read_text(encoding="utf-8") == text:
            return 0
        print(f"{OUTPUT.relative_to(ROOT)} is out of date: run "
              "`python scripts/gen_permissions_docs.py`", file=sys.stderr)
        return 1
    if args:
        print("usage: python scripts/gen_permissions_docs.py [--check]", file=sys.stderr)
        return 2
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
