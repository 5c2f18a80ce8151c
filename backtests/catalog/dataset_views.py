"""The datasets API: GET /datasets (list), GET /datasets/<id>, POST /datasets (upload)."""

import shutil
import tempfile
from pathlib import Path

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from backtests.catalog import access, queries
from backtests.catalog.bars_import import (
    BadImport,
    DatasetInUse,
    Imported,
    NotYourDataset,
    import_file,
)
from backtests.catalog.rest import api_view, error_response, forbidden, json_response
from backtests.catalog.serializers import dataset_detail
from backtests.catalog.validation import (
    UPLOAD_TYPES,
    DatasetUpload,
    parse_dataset_query,
    parse_dataset_upload,
)
from backtests.engine.problems import BarsError
from backtests.errors import ErrorCode

COPY_CHUNK = 1 << 20


@api_view("GET", "POST", json_body=False)  # an upload is CSV or Parquet, checked below
async def datasets(request: HttpRequest) -> HttpResponse:
    """GET lists datasets by id; POST uploads a bars file as a dataset."""
    if request.method == "POST":
        return await upload(request)
    query = parse_dataset_query(dict(request.GET.lists()))
    page = await queries.list_datasets(query, request.user)
    return json_response(
        {
            "items": [dataset_detail(dataset, runs) for dataset, runs in page.items],
            "total": page.total,
            "limit": query.limit,
            "offset": query.offset,
        }
    )


@api_view("GET")
async def dataset(request: HttpRequest, dataset_id: str) -> HttpResponse:
    """GET /datasets/<id>: the dataset, its bars' description and its number of runs."""
    found = await queries.get_dataset(dataset_id)
    if found is None:
        return error_response(ErrorCode.DATASET_NOT_FOUND, f"no dataset {dataset_id}")
    if not access.may_use_dataset(request.user, found[0].owner_id, found[0].public):
        return forbidden(f"dataset {dataset_id} is another user's")
    return json_response(dataset_detail(*found))


async def upload(request: HttpRequest) -> HttpResponse:
    """POST /datasets?dataset_id=&symbol=&tz=&interval=&public=: 201 created, 200 replaced (a
    dataset without runs) or unchanged, 422 with the bad rows, 409 when it has runs."""
    spec = parse_dataset_upload(dict(request.GET.lists()), request.content_type)
    if not spec.fmt:
        return error_response(
            ErrorCode.UNSUPPORTED_MEDIA_TYPE,
            f"a bars file is sent as one of {', '.join(UPLOAD_TYPES)}, not "
            f"{request.content_type or 'no Content-Type'}",
            {"Content-Type": f"must be one of {', '.join(UPLOAD_TYPES)}"},
        )
    try:
        # Copying, reading and checking a large file: in a thread, never on the loop.
        imported = await sync_to_async(receive)(request, spec)
    except BadImport as bad:
        return error_response(ErrorCode.VALIDATION, "invalid query parameters", bad.problems)
    except BarsError as refused:
        return error_response(
            ErrorCode.VALIDATION,
            f"the bars file is refused, nothing written: {refused.message}",
            {"file": str(refused), "problems": [p.as_dict() for p in refused.problems]},
        )
    except NotYourDataset as not_yours:
        return forbidden(f"{not_yours}: upload under another id")
    except DatasetInUse as in_use:
        return error_response(
            ErrorCode.CONFLICT, str(in_use), {"dataset_id": spec.dataset_id, "runs": in_use.runs}
        )
    found = await queries.get_dataset(spec.dataset_id)
    assert found is not None  # it was just saved
    return json_response(
        dataset_detail(*found), status=201 if imported.outcome == "created" else 200
    )


def receive(request: HttpRequest, spec: DatasetUpload) -> Imported:
    """Copy the body to a temporary file beside the bars files, then import it."""
    incoming = Path(settings.DATA_DIR)
    incoming.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(prefix=".upload-", dir=incoming) as file:
        shutil.copyfileobj(request, file, COPY_CHUNK)
        file.flush()
        return import_file(
            spec.dataset_id,
            Path(file.name),
            spec.symbol,
            spec.tz,
            spec.interval,
            spec.fmt,
            owner=access.owner_of(request.user),
            public=spec.public,
            may_replace=lambda existing: access.may_replace_dataset(
                request.user, existing.owner_id
            ),
        )
