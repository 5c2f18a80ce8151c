"""Users and credentials for the access tests: two users, staff, and tokens of each kind."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model

from accounts import tokens


@dataclass
class People:
    alice: object
    bob: object
    staff: object
    alice_token: str
    bob_token: str
    staff_token: str
    revoked_token: str


def make_people() -> People:
    """alice and bob (users), root (staff), a token each, and a revoked token of alice's."""
    users = get_user_model()
    # No passwords: hashing them is most of a test's time; sessions come from force_login.
    alice = users.objects.create_user("alice")
    bob = users.objects.create_user("bob")
    staff = users.objects.create_user("root", is_staff=True)
    revoked = tokens.create(alice, "old laptop")
    tokens.revoke(revoked.row)
    return People(
        alice=alice,
        bob=bob,
        staff=staff,
        alice_token=tokens.create(alice).token,
        bob_token=tokens.create(bob).token,
        staff_token=tokens.create(staff).token,
        revoked_token=revoked.token,
    )


BAD_TOKEN = "bt_" + "x" * 43  # well-formed, but nobody's


def bearer(token: str) -> dict:
    """The header dict for a token."""
    return {"Authorization": f"Bearer {token}"}
