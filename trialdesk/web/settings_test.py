"""Settings for the test suite: the real settings with a test-only secret key."""

import os

os.environ.setdefault("TRIALDESK_SECRET_KEY", "test-only-not-secret-" + "x" * 40)
os.environ.setdefault("TRIALDESK_SECURE_COOKIES", "0")

from trialdesk.web.settings import *  # noqa: F403
