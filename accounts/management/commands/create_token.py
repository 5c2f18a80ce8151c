"""manage.py create_token USERNAME [--create-user] [--name NAME] [--staff]: a new API token,
printed as the last line (and never again)."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from accounts import tokens


class Command(BaseCommand):
    help = "Make an API token for a user; the token is the last line printed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--create-user", action="store_true", help="make the user if there is none"
        )
        parser.add_argument("--staff", action="store_true", help="a new user is staff")
        parser.add_argument("--name", default="", help="what the token is for")

    def handle(self, *args, username: str, create_user: bool, staff: bool, name: str, **options):
        users = get_user_model()
        user = users.objects.filter(username=username).first()
        if user is None:
            if not create_user:
                raise CommandError(f"no user {username!r}: add --create-user to make one")
            user = users(username=username, is_staff=staff)
            user.set_unusable_password()  # a token user; `changepassword` gives it one
            try:
                user.full_clean(exclude=["password"])
            except Exception as bad:
                raise CommandError(f"user {username!r} cannot be made: {bad}") from None
            user.save()
            self.stderr.write(f"created user {username}")
        if not user.is_active:
            raise CommandError(f"user {username!r} is inactive")
        made = tokens.create(user, name[:100])
        self.stderr.write(
            f"token {made.row.prefix}… for {username}: keep it now, it is not shown again"
        )
        self.stdout.write(made.token)
