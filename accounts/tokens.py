"""Making and checking API tokens: random, shown once, kept as a SHA-256 digest.

A token is `bt_` and 43 URL-safe characters (256 random bits). So much entropy needs no
slow password hash: a digest cannot be reversed, and looking one up is one indexed query.
"""

import hashlib
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from accounts.models import ApiToken

PREFIX = "bt_"
SHAPE = re.compile(r"bt_[A-Za-z0-9_-]{43}")
SHOWN_CHARS = 10  # "bt_" and 7 more: enough for a person to tell tokens apart
# last_used_at is written at most this often per token, so that reads stay reads.
LAST_USED_RESOLUTION = timedelta(seconds=60)
# A token found valid is trusted for this long by the process that checked it, so that a
# client's steady requests cost no query; revoking clears it at once in the process that
# revokes, and every other process refuses the token within this time (docs/access.md).
TRUSTED_SECONDS = 5.0
TRUSTED_MAX = 10_000
_trusted: OrderedDict[str, tuple[AbstractBaseUser, float]] = OrderedDict()


@dataclass(frozen=True, slots=True)
class NewToken:
    """A token just made: the row, and the token itself (never stored)."""

    row: ApiToken
    token: str


def digest(token: str) -> str:
    """The stored form of a token."""
    return hashlib.sha256(token.encode()).hexdigest()


def create(user: AbstractBaseUser, name: str = "") -> NewToken:
    """A new token for `user`."""
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken.objects.create(
        user=user, name=name, prefix=token[:SHOWN_CHARS], digest=digest(token)
    )
    return NewToken(row, token)


async def user_for(token: str) -> AbstractBaseUser | None:
    """The active user whose live token this is, or None: one query, none while the token
    is trusted (TRUSTED_SECONDS), and a write of last_used_at at most once a minute."""
    if not SHAPE.fullmatch(token):
        return None
    key = digest(token)
    trusted = _trusted.get(key)
    if trusted is not None and trusted[1] > time.monotonic():
        return trusted[0]
    row = (
        await ApiToken.objects.select_related("user")
        .filter(digest=key, revoked_at__isnull=True)
        .afirst()
    )
    if row is None or not row.user.is_active:
        _trusted.pop(key, None)
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
        await ApiToken.objects.filter(pk=row.pk).aupdate(last_used_at=now)
    _trusted[key] = (row.user, time.monotonic() + TRUSTED_SECONDS)
    _trusted.move_to_end(key)
    while len(_trusted) > TRUSTED_MAX:
        _trusted.popitem(last=False)
    return row.user


def forget(digests) -> None:
    """Trust these tokens no more in this process (they were revoked)."""
    for key in digests:
        _trusted.pop(key, None)


def revoke(row: ApiToken) -> None:
    """Refuse the token from now on (its row stays, for the record)."""
    if row.revoked_at is None:
        row.revoked_at = timezone.now()
        row.save(update_fields=["revoked_at"])
    forget([row.digest])
