"""Django settings, read from the environment with safe defaults.

=============================  ==============================================
``TRIALDESK_SECRET_KEY``       required unless ``TRIALDESK_DEMO=1``
``TRIALDESK_DEMO``             demo mode (``make run``): generated secret key
``TRIALDESK_DEBUG``            Django debug pages (never in production)
``DATABASE_URL``               PostgreSQL, e.g. ``postgres://u:p@host/db``;
                               unset: SQLite file ``TRIALDESK_SQLITE_PATH``
``TRIALDESK_SQLITE_PATH``      default ``var/trialdesk.sqlite3``
``TRIALDESK_ALLOWED_HOSTS``    comma-separated, default localhost names
``TRIALDESK_PROTOCOL``         protocol file, default ``protocols/rumcess.yaml``
``TRIALDESK_SECURE_COOKIES``   HTTPS-only cookies and HSTS (default on unless demo)
``TRIALDESK_SESSION_HOURS``    idle session expiry, default 8
=============================  ==============================================
"""

from __future__ import annotations

import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from trialdesk.protocol.loader import DEFAULT_PROTOCOL
from trialdesk.web.env import env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent

DEMO = env_bool("TRIALDESK_DEMO")
DEBUG = env_bool("TRIALDESK_DEBUG")

SECRET_KEY = env_str("TRIALDESK_SECRET_KEY")
if SECRET_KEY is None:
    if not (DEMO or DEBUG):
        raise ImproperlyConfigured(
            "TRIALDESK_SECRET_KEY is not set. Set it to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set TRIALDESK_DEMO=1 for a local demonstration."
        )
    SECRET_KEY = secrets.token_urlsafe(50)  # demo only: sessions end when the server stops

ALLOWED_HOSTS = env_list("TRIALDESK_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

TRIALDESK_PROTOCOL = Path(env_str("TRIALDESK_PROTOCOL", str(DEFAULT_PROTOCOL)) or "")

# Reasons for change are free text a coordinator types: no 100-character limit (simple-
# history's default is a CharField(100), which PostgreSQL enforces and SQLite does not).
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "simple_history",
    "django_htmx",
    "trialdesk.web.core",
    "trialdesk.web.sites",
    "trialdesk.web.accounts",
    "trialdesk.web.screening",
    "trialdesk.web.randomization",
    "trialdesk.web.audit",
    "trialdesk.web.api",
    "trialdesk.web.casebook",
    "trialdesk.web.datamgmt",
    "trialdesk.web.safety",
    "trialdesk.web.prescreen",
    "trialdesk.web.reports",
    "trialdesk.web.exports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "trialdesk.web.accounts.idle.IdleTimeoutMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "trialdesk.web.accounts.permissions.DenyByDefaultMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "trialdesk.web.urls"
WSGI_APPLICATION = "trialdesk.web.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "trialdesk.web.core.context.protocol",
                "trialdesk.web.core.context.permissions",
            ],
        },
    },
]

_database_url = env_str("DATABASE_URL")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=60)}
else:
    _sqlite = Path(env_str("TRIALDESK_SQLITE_PATH", str(BASE_DIR / "var" / "trialdesk.sqlite3"))
                   or "")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _sqlite,
            # write transactions take the lock at BEGIN: no lost updates under concurrency
            "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 20},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
     "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"  # stored and compared in UTC; shown in each site's zone
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

EMAIL_BACKEND = env_str("TRIALDESK_EMAIL_BACKEND",
                        "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("TRIALDESK_FROM_EMAIL", "trialdesk@localhost")

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "core:home"
TRIALDESK_LOCKOUT_FAILURES = env_int("TRIALDESK_LOCKOUT_FAILURES", 5, minimum=1)
TRIALDESK_LOCKOUT_MINUTES = env_int("TRIALDESK_LOCKOUT_MINUTES", 15, minimum=1)

# --- security ------------------------------------------------------------------------
SECURE_COOKIES = env_bool("TRIALDESK_SECURE_COOKIES", default=not (DEMO or DEBUG))
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = env_int("TRIALDESK_SESSION_HOURS", 8, minimum=1) * 3600
# idle expiry by trialdesk.web.accounts.idle (a write at most once per refresh period)
SESSION_SAVE_EVERY_REQUEST = False
TRIALDESK_SESSION_REFRESH_SECONDS = env_int("TRIALDESK_SESSION_REFRESH_SECONDS", 300,
                                            minimum=1)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if SECURE_COOKIES:
    SECURE_HSTS_SECONDS = 31536000
    SECURE_SSL_REDIRECT = env_bool("TRIALDESK_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
