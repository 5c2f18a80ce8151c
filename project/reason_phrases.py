"""Standard reason phrases on daphne's status lines.

daphne takes a response's reason phrase from Twisted's table, which lacks codes that this
API answers with (422, 429): clients and proxies would read `HTTP/1.1 422 Unknown Status`.
uvicorn uses the standard phrases already.
"""

import sys
from http import HTTPStatus


def fill_twisted_reason_phrases() -> None:
    """Give every standard status that Twisted's table lacks its standard phrase."""
    twisted_http = sys.modules.get("twisted.web.http")
    if twisted_http is None:
        return  # not served by daphne: nothing to fill
    for status in HTTPStatus:
        twisted_http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))
