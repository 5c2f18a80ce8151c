"""Personal API tokens: sent as `Authorization: Bearer <token>`, stored as a digest."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class ApiToken(models.Model):
    """One user's API token. The token itself is shown once, when it is made; the table
    keeps its SHA-256 and its first characters, which identify it to people."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, help_text="what it is for")
    prefix = models.CharField(max_length=16, editable=False, help_text="its first characters")
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="refused from then on")

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @property
    def active(self) -> bool:
        """Whether it still authenticates."""
        return self.revoked_at is None
