"""Who may read and change what (docs/access.md#ownership).

Under AUTH_MODE=off everyone may do everything, as on a developer's machine. Under
`required`: a user reads and cancels their own runs (runs without an owner, the
operator's, are staff's); datasets are theirs, the operator's, or public; a user replaces
only their own; staff read and change everything.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from accounts.authentication import required

User = AbstractBaseUser | AnonymousUser


def sees_everything(user: User) -> bool:
    """Whether no ownership rule applies to the user."""
    return not required() or bool(getattr(user, "is_staff", False))


def owner_of(user: User):
    """The user to record as a creator: None for an anonymous request."""
    return user if user.is_authenticated else None


def visible_runs(runs: QuerySet, user: User) -> QuerySet:
    """The runs the user may list and read: one equality, which the (owner, created_at)
    index serves in list order."""
    if sees_everything(user):
        return runs
    return runs.filter(owner_id=user.pk)


def may_read_run(user: User, owner_id: int | None) -> bool:
    """Whether the user may read (and cancel) a run with this owner."""
    return sees_everything(user) or (owner_id is not None and owner_id == user.pk)


may_change_run = may_read_run


def visible_datasets(datasets: QuerySet, user: User) -> QuerySet:
    """The datasets the user may list, read and run on."""
    if sees_everything(user):
        return datasets
    return datasets.filter(Q(owner_id=user.pk) | Q(owner__isnull=True) | Q(public=True))


def may_use_dataset(user: User, owner_id: int | None, public: bool) -> bool:
    """Whether the user may read and run on a dataset."""
    return sees_everything(user) or owner_id is None or public or owner_id == user.pk


def may_replace_dataset(user: User, owner_id: int | None) -> bool:
    """Whether the user may upload other bars under a dataset's id (the operator's: staff)."""
    return sees_everything(user) or (owner_id is not None and owner_id == user.pk)
