"""Security headers (#18): a Content-Security-Policy without inline script on every page and
API answer, nosniff, Referrer-Policy and no framing, through the real ASGI application;
and no template of ours holds an inline script, handler or style for the policy to refuse."""

import re
from pathlib import Path

import pytest

from tests.conftest import asgi_get

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = sorted(ROOT.glob("*/templates/**/*.html"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "path", ["/accounts/login/", "/admin/login/", "/backtests", "/strategies", "/healthz"]
)
async def test_every_answer_carries_the_policy_and_the_headers(path) -> None:
    response = await asgi_get(path)
    assert response["status"] == 200
    headers = {name.lower(): value for name, value in response["headers"].items()}
    policy = headers[b"content-security-policy"].decode()
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"  # no 'unsafe-inline', no other origin
    assert directives["frame-ancestors"] == "'none'"
    assert directives["object-src"] == "'none'"
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"referrer-policy"] == b"same-origin"
    assert headers[b"x-frame-options"] == b"DENY"


def test_there_are_templates_to_check() -> None:
    names = {path.name for path in TEMPLATES}
    assert {"play.html", "login.html"} <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda path: path.name)
def test_no_template_has_inline_script_handlers_or_styles(template: Path) -> None:
    text = template.read_text()
    for tag in re.findall(r"<script\b[^>]*>", text):
        assert "src=" in tag, f"{template.name}: inline {tag}"
    assert not re.search(r"\son[a-z]+\s*=", text), f"{template.name}: an inline handler"
    assert not re.search(r"\sstyle\s*=", text), f"{template.name}: an inline style"
    assert "<style" not in text
