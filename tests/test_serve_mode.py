"""`make start-backend` says which auth mode it runs in (#18), on its first line."""

import project.settings as project_settings
from bin import serve


def test_loopback_says_auth_is_off(capsys, monkeypatch) -> None:
    monkeypatch.setattr(project_settings, "AUTH_MODE", "off")
    serve.say_auth_mode("127.0.0.1", 8000)
    line = capsys.readouterr().err.strip()
    assert line.startswith("serve: AUTH_MODE=off: anyone who reaches 127.0.0.1:8000")


def test_required_says_how_to_get_in(capsys, monkeypatch) -> None:
    monkeypatch.setattr(project_settings, "AUTH_MODE", "required")
    serve.say_auth_mode("0.0.0.0", 8000)
    line = capsys.readouterr().err.strip()
    assert line.startswith("serve: AUTH_MODE=required") and "create_token" in line
