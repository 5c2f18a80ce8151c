"""docs/api/openapi.yaml is a valid OpenAPI 3.1 document that lists every API route."""

from openapi_spec_validator import validate

from backtests.errors import ErrorCode
from tests.openapi import spec


def test_document_is_valid_openapi_3_1() -> None:
    document = spec()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_document_lists_the_api_routes() -> None:
    assert set(spec()["paths"]) == {
        "/healthz",
        "/backtests",
        "/backtests/{run_id}",
        "/backtests/{run_id}/cancel",
        "/backtests/{run_id}/stream",
        "/backtests/{run_id}/trades",
        "/backtests/{run_id}/equity",
        "/backtests/{run_id}/bars",
        "/strategies",
        "/datasets",
        "/datasets/{dataset_id}",
        "/sweeps",
        "/sweeps/{sweep_id}",
        "/sweeps/{sweep_id}/results",
        "/sweeps/{sweep_id}/heatmap",
        "/sweeps/{sweep_id}/events",
        "/sweeps/{sweep_id}/cancel",
        "/sweeps/{sweep_id}/promote",
    }


def test_error_codes_in_the_document_match_the_code() -> None:
    codes = spec()["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]
    assert set(codes["enum"]) == {code.value for code in ErrorCode}
