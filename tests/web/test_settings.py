"""Settings from the environment: safe defaults, clear refusals, PostgreSQL by URL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from trialdesk.web.env import env_bool, env_int

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TRIALDESK_", "DATABASE_URL", "DJANGO_"))}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=300)


def test_env_bool_refuses_ambiguous_values(monkeypatch):
    monkeypatch.setenv("TRIALDESK_X", "maybe")
    with pytest.raises(ImproperlyConfigured, match="TRIALDESK_X"):
        env_bool("TRIALDESK_X")
    monkeypatch.setenv("TRIALDESK_X", "Yes")
    assert env_bool("TRIALDESK_X") is True


def test_env_int_refuses_non_numbers(monkeypatch):
    monkeypatch.setenv("TRIALDESK_N", "eight")
    with pytest.raises(ImproperlyConfigured, match="whole number"):
        env_int("TRIALDESK_N", 8)


def test_production_start_without_secret_key_is_refused(tmp_path):
    result = _manage("check", env={"TRIALDESK_SQLITE_PATH": str(tmp_path / "db.sqlite3")})
    assert result.returncode != 0
    assert "TRIALDESK_SECRET_KEY is not set" in result.stderr


def test_broken_protocol_fails_the_system_check_with_a_stable_id(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text((ROOT / "protocols" / "rumcess.yaml").read_text()
                      .replace("hours: 10", "hours: ten"))
    result = _manage("check", env={"TRIALDESK_DEMO": "1", "TRIALDESK_PROTOCOL": str(broken),
                                   "TRIALDESK_SQLITE_PATH": str(tmp_path / "db.sqlite3")})
    assert result.returncode != 0
    assert "trialdesk.E001" in result.stderr
    assert "eligibility.inclusion.1.hours" in result.stderr


def test_demo_mode_migrates_an_sqlite_file(tmp_path):
    db = tmp_path / "demo.sqlite3"
    result = _manage("migrate", "--noinput",
                     env={"TRIALDESK_DEMO": "1", "TRIALDESK_SQLITE_PATH": str(db)})
    assert result.returncode == 0, result.stderr
    assert db.exists()


POSTGRES_URL = os.environ.get("TRIALDESK_TEST_DATABASE_URL")


@pytest.mark.postgres
def test_database_url_selects_postgresql_and_migrations_apply():
    if POSTGRES_URL is None:
        message = ("needs a PostgreSQL server: set TRIALDESK_TEST_DATABASE_URL "
                   "(.ci/run starts one and sets it)")
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must exercise PostgreSQL
        pytest.skip(message)  # a developer machine without PostgreSQL
    import psycopg

    name = f"trialdesk_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
        env = {"TRIALDESK_SECRET_KEY": "x" * 50, "TRIALDESK_SECURE_COOKIES": "0",
               "DATABASE_URL": url}
        result = _manage("migrate", "--noinput", env=env)
        assert result.returncode == 0, result.stderr
        shown = _manage("shell", "-c",
                        "from django.db import connection; print(connection.vendor)", env=env)
        assert shown.stdout.strip().splitlines()[-1] == "postgresql"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
