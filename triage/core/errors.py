"""The error tree. Domain code raises these; the Slack and HTTP edges turn them into messages.

    TriageError
    ├── ConfigError            invalid settings or config file; the message names the key
    ├── ValidationFailed       user input broke a rule; .errors maps field -> message
    ├── LifecycleError         a request can't make this move
    │   ├── AlreadyClaimed     someone else holds it; .owner is their Slack id
    │   ├── NotAllowed         this person may not do this
    │   └── InvalidTransition  the request's state does not allow this move
    └── DeliveryError          talking to GitLab or Slack failed
        ├── RetryLater         down, timed out, 5xx or 429; .retry_after in seconds when the service said
        └── Rejected           the service refused for good (4xx); retrying the same call won't help
"""

from __future__ import annotations


class TriageError(Exception):
    """Base of every error the app raises on purpose."""


class ConfigError(TriageError):
    """Settings or the config file are invalid; the message names the key."""


class ValidationFailed(TriageError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class LifecycleError(TriageError):
    """A request can't make this move."""


class AlreadyClaimed(LifecycleError):
    def __init__(self, owner: str | None):
        super().__init__(f"already taken by {owner}" if owner else "already taken")
        self.owner = owner


class NotAllowed(LifecycleError):
    """This person may not do this."""


class InvalidTransition(LifecycleError):
    """The request's state does not allow this move."""


class DeliveryError(TriageError):
    """Talking to GitLab or Slack failed."""


class RetryLater(DeliveryError):
    """Try again later (after `retry_after` seconds when the service said). `applied=False` when the service
    certainly did nothing with the call (a 429: refused before acting), so the retry need not first look
    for what this attempt made."""

    def __init__(self, message: str, retry_after: float | None = None, *, applied: bool | None = None):
        super().__init__(message)
        self.retry_after = retry_after
        self.applied = applied


class Rejected(DeliveryError):
    """The service refused for good; retrying the same call won't help."""
