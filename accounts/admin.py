"""API tokens in the admin: made there (shown once), listed by prefix, revoked."""

from django.contrib import admin, messages
from django.utils import timezone

from accounts import tokens
from accounts.models import ApiToken


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "user", "name", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("prefix", "name", "user__username")
    readonly_fields = ("prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_fields(self, request, obj=None):
        """Adding asks for the user and a name; the rest is the record."""
        if obj is None:
            return ("user", "name")
        return ("user", "name", "prefix", "created_at", "last_used_at", "revoked_at")

    def get_readonly_fields(self, request, obj=None):
        """A token's user is fixed once it exists."""
        return self.readonly_fields + (("user",) if obj is not None else ())

    def save_model(self, request, obj, form, change) -> None:
        """A new row gets a new token, shown to the operator this once."""
        if change:
            obj.save()
            tokens.forget([obj.digest])  # a revocation set on its page, say
            return
        made = tokens.create(obj.user, obj.name)
        obj.pk, obj.prefix, obj.digest = made.row.pk, made.row.prefix, made.row.digest
        obj.created_at = made.row.created_at
        messages.warning(request, f"The token for {obj.user}, shown this once: {made.token}")

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset) -> None:
        """Refuse them from now on."""
        live = queryset.filter(revoked_at__isnull=True)
        digests = list(live.values_list("digest", flat=True))
        count = live.update(revoked_at=timezone.now())
        tokens.forget(digests)
        self.message_user(request, f"{count} token(s) revoked.")
