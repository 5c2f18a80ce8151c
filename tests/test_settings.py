"""Settings read from the environment: defaults, parsing, and the secret-key rule."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from project import settings as project_settings
from tests.live_server import SETTING_VARS, service_env

ROOT = Path(__file__).resolve().parent.parent


def run_manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """Run manage.py with a clean DJANGO_*/WS_* environment plus `env`."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_VARS)}
    base.update({"DJANGO_VAR_DIR": str(tmp_path)}, **env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=base,
        capture_output=True,
        text=True,
        timeout=60,
    )


def run_check(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run `manage.py check` with a clean DJANGO_*/WS_* environment plus `env`."""
    return run_manage(tmp_path, "check", **env)


def test_defaults_are_a_local_loopback_run(tmp_path: Path) -> None:
    names = "ALLOWED_HOSTS CORS_ALLOWED_ORIGINS WS_MAX_MESSAGE_BYTES WS_HEARTBEAT_INTERVAL DEBUG"
    code = f"from django.conf import settings as s; print([getattr(s, n) for n in {names.split()}])"
    result = run_manage(tmp_path, "shell", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == repr(
        [
            ["localhost", "127.0.0.1", "[::1]"],
            ["http://localhost:5173", "http://127.0.0.1:5173"],
            65536,
            5.0,
            False,
        ]
    )


def test_local_run_needs_no_secret_key_and_keeps_it_across_restarts(tmp_path: Path) -> None:
    assert run_check(tmp_path).returncode == 0
    key = (tmp_path / "dev-secret-key").read_text()
    assert len(key) >= 50
    assert run_check(tmp_path).returncode == 0
    assert (tmp_path / "dev-secret-key").read_text() == key


def test_public_host_without_secret_key_stops_startup_with_a_clear_message(tmp_path) -> None:
    result = run_check(tmp_path, DJANGO_ALLOWED_HOSTS="api.example.com,localhost")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
    assert "api.example.com" in result.stderr
    assert not (tmp_path / "dev-secret-key").exists()


def test_public_host_with_secret_key_starts(tmp_path: Path) -> None:
    result = run_check(tmp_path, DJANGO_ALLOWED_HOSTS="api.example.com", DJANGO_SECRET_KEY="x" * 60)
    assert result.returncode == 0, result.stderr


def test_bad_setting_value_stops_startup_naming_the_variable(tmp_path: Path) -> None:
    result = run_check(tmp_path, WS_HEARTBEAT_INTERVAL="soon")
    assert result.returncode != 0
    assert "WS_HEARTBEAT_INTERVAL='soon' is not a number" in result.stderr


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1", True), ("TRUE", True), ("on", True), ("0", False), ("no", False), ("", False)],
)
def test_env_bool(monkeypatch, raw: str, expected: bool) -> None:
    monkeypatch.setenv("X_FLAG", raw)
    assert project_settings.env_bool("X_FLAG", False) is expected


def test_env_bool_refuses_other_words(monkeypatch) -> None:
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_FLAG='maybe' is not a boolean"):
        project_settings.env_bool("X_FLAG", False)


def test_env_list_splits_and_trims(monkeypatch) -> None:
    monkeypatch.setenv("X_LIST", " a.example , ,b.example")
    assert project_settings.env_list("X_LIST", []) == ["a.example", "b.example"]


@pytest.mark.parametrize("raw", ["0", "-1", "nan"])
def test_env_number_enforces_the_minimum(monkeypatch, raw: str) -> None:
    monkeypatch.setenv("X_NUM", raw)
    with pytest.raises(ImproperlyConfigured, match="must be at least"):
        project_settings.env_number("X_NUM", 5.0, minimum=0.01)


def deploy_check(tmp_path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=service_env(
            tmp_path,
            DJANGO_ALLOWED_HOSTS="backtests.example.com",
            DJANGO_SECRET_KEY="k" * 20 + "-a-long-random-production-key-" + "z" * 20,
            **env,
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_for_the_documented_production_settings(tmp_path) -> None:
    result = deploy_check(tmp_path, DJANGO_SECURE="1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_sees_djangos_own_middleware(tmp_path) -> None:
    # Without DJANGO_SECURE it warns of HTTPS settings, and only of those: the middleware
    # (security, CSRF, X-Frame-Options) is seen, not falsely reported missing.
    output = deploy_check(tmp_path).stderr
    for code in ("W004", "W008", "W012", "W016"):
        assert f"security.{code}" in output
    for code in ("W001", "W002", "W003"):
        assert f"security.{code}" not in output


@pytest.mark.parametrize(
    ("hosts", "given", "expected"),
    [
        (["localhost", "127.0.0.1", "[::1]"], "", "off"),  # loopback: a developer's run
        (["backtests.example.com", "localhost"], "", "required"),  # reachable: required
        (["*"], "", "required"),
        (["localhost"], "required", "required"),  # asked for on loopback
        (["backtests.example.com"], "OFF", "off"),  # said outright: behind a proxy's auth
    ],
)
def test_auth_mode_is_required_wherever_the_service_is_reachable(
    monkeypatch, hosts, given, expected
) -> None:
    monkeypatch.setenv("AUTH_MODE", given)
    assert project_settings.auth_mode(hosts) == expected


def test_a_bad_auth_mode_stops_startup(monkeypatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "sometimes")
    with pytest.raises(ImproperlyConfigured, match="AUTH_MODE='sometimes': use required or off"):
        project_settings.auth_mode(["localhost"])
