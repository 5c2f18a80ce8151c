"""Check HTTP responses against docs/api/openapi.yaml."""

import re
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).resolve().parent.parent / "docs" / "api" / "openapi.yaml"
SPEC_URI = "urn:openapi"


@cache
def spec() -> dict[str, Any]:
    """The parsed OpenAPI document."""
    return yaml.safe_load(SPEC_PATH.read_text())


@cache
def registry() -> Registry:
    """A schema registry holding the whole document, so that its $refs resolve."""
    return Registry().with_resource(
        SPEC_URI, Resource.from_contents(spec(), default_specification=DRAFT202012)
    )


def pointer(*parts: str) -> str:
    """A JSON pointer into the document."""
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def validate(instance: Any, schema_pointer: str) -> None:
    """Validate against the schema at `schema_pointer` in the document."""
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{SPEC_URI}#{schema_pointer}"},
        registry=registry(),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )
    validator.validate(instance)


def template_for(path: str) -> str | None:
    """The document's path template that `path` matches, if any."""
    for template in spec()["paths"]:
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return template
    return None


def assert_response_matches(method: str, path: str, status: int, body: Any) -> None:
    """Assert the response is documented: its status for this operation, and its schema."""
    template = template_for(path)
    if template is None:
        # Paths the document does not list may only answer with an error envelope.
        assert status >= 400, f"{method} {path} answered {status} but is not documented"
        validate(body, pointer("components", "schemas", "Error"))
        return
    operation = spec()["paths"][template].get(method.lower())
    if operation is None:
        # A method the document does not list for a path it does: 405 and the envelope.
        assert status == 405, f"{method} {template} answered {status} but is not documented"
        validate(body, pointer("components", "schemas", "Error"))
        return
    responses = operation["responses"]
    assert str(status) in responses, f"{method} {template} -> {status} is not documented"
    response = responses[str(status)]
    if "$ref" in response:
        validate(body, pointer("components", "schemas", "Error"))
        return
    validate(
        body,
        pointer("paths", template, method.lower(), "responses", str(status), "content")
        + pointer("application/json", "schema"),
    )


def assert_request_matches(body: Any) -> None:
    """Assert a create body is valid by the document."""
    validate(body, pointer("components", "schemas", "CreateRun"))
