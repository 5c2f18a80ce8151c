"""Who sees a page: under AUTH_MODE=required, a logged-in user (anyone else is sent to
the login page); what they see follows the API's rules (backtests/catalog/access.py)."""

import functools
from collections.abc import Awaitable, Callable

from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse

from accounts.authentication import required

PageView = Callable[..., Awaitable[HttpResponse]]


def page_view(view: PageView) -> PageView:
    """Set request.user from the session; send an anonymous visitor to log in first."""

    @functools.wraps(view)
    async def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = await request.auser()
        if required() and not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        request.user = user
        return await view(request, *args, **kwargs)

    return wrapper
