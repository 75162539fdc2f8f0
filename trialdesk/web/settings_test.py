"""Settings for the test suite: the real settings with a test-only secret key."""

import os
import tempfile

os.environ.setdefault("TRIALDESK_SECRET_KEY", "test-only-not-secret-" + "x" * 40)
os.environ.setdefault("TRIALDESK_SECURE_COOKIES", "0")

from trialdesk.web.settings import *  # noqa: F403

# a file, not :memory:, so concurrency tests and subprocesses share the test database
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.environ.get(
            "TRIALDESK_TEST_SQLITE_PATH",
            os.path.join(tempfile.gettempdir(), f"trialdesk-test-{os.getpid()}.sqlite3")),
    }
