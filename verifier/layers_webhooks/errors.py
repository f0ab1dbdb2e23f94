"""Every error the verifier raises, in one tree.

::

    Exception
    ├── WebhookVerificationError        the request is not a valid webhook: answer 4xx
    │   ├── MissingHeaderError           webhook-id / -timestamp / -signature absent
    │   ├── MalformedHeaderError         present but not well-formed (e.g. "1e9", "+12", "١٢٣")
    │   ├── TimestampTooOldError         older than now - tolerance
    │   ├── TimestampTooNewError         newer than now + tolerance
    │   ├── NoMatchingSignatureError     no (key, signature) pair matched
    │   ├── InvalidPayloadError          signed, but not UTF-8 JSON (or not bytes/str at all)
    │   └── DuplicateMessageError        webhook-id already accepted within the window
    └── ValueError
        └── InvalidSecretError           configuration error: a malformed whsec_/whpk_ key

`verify` raises only the `WebhookVerificationError` branch, whatever the input. A bad
secret is a deployment mistake, not a bad request, so `InvalidSecretError` is raised by the
`Webhook` constructor and is deliberately *not* a verification error.

No error ever carries a secret: attributes and messages hold only what the sender put on the
wire (message id, timestamp, header names) and the receiver's own clock and tolerance.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DuplicateMessageError",
    "InvalidPayloadError",
    "InvalidSecretError",
    "MalformedHeaderError",
    "MissingHeaderError",
    "NoMatchingSignatureError",
    "TimestampTooNewError",
    "TimestampTooOldError",
    "WebhookVerificationError",
]


def _restore(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Rebuild a pickled error without calling its keyword-only constructor."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class WebhookVerificationError(Exception):
    """The request is not a valid webhook; the receiver should answer with a 4xx.

    The same name partners already catch from `standardwebhooks` and `svix`.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword-only attributes, which BaseException's default pickling
        # (cls(*args)) cannot rebuild; errors cross process boundaries (task queues, logs).
        return (_restore, (type(self), self.args, self.__dict__))


class MissingHeaderError(WebhookVerificationError):
    """A required header is absent (under both its `webhook-` and `svix-` names)."""

    def __init__(self, *, header: str) -> None:
        fallback = header.replace("webhook-", "svix-", 1)
        super().__init__(f"missing required header {header!r} (or {fallback!r})")
        self.header = header


class MalformedHeaderError(WebhookVerificationError):
    """A header is present but not well-formed; `reason` says how."""

    def __init__(self, *, header: str, reason: str) -> None:
        super().__init__(f"malformed header {header!r}: {reason}")
        self.header = header
        self.reason = reason


class _TimestampError(WebhookVerificationError):
    """The signed timestamp is outside `now ± tolerance` (seconds)."""

    def __init__(
        self, message: str, *, msg_id: str, timestamp: int, now: float, tolerance: float
    ) -> None:
        super().__init__(message)
        self.msg_id = msg_id
        self.timestamp = timestamp
        self.now = now
        self.tolerance = tolerance


class TimestampTooOldError(_TimestampError):
    """`webhook-timestamp` is older than `now - tolerance`: a stale or replayed request."""

    def __init__(self, *, msg_id: str, timestamp: int, now: float, tolerance: float) -> None:
        super().__init__(
            f"webhook-timestamp {timestamp} is {now - timestamp:.0f} s in the past, "
            f"beyond the {tolerance:g} s tolerance (message {msg_id!r})",
            msg_id=msg_id,
            timestamp=timestamp,
            now=now,
            tolerance=tolerance,
        )


class TimestampTooNewError(_TimestampError):
    """`webhook-timestamp` is newer than `now + tolerance`: a clock skew or a forgery."""

    def __init__(self, *, msg_id: str, timestamp: int, now: float, tolerance: float) -> None:
        super().__init__(
            f"webhook-timestamp {timestamp} is {timestamp - now:.0f} s in the future, "
            f"beyond the {tolerance:g} s tolerance (message {msg_id!r})",
            msg_id=msg_id,
            timestamp=timestamp,
            now=now,
            tolerance=tolerance,
        )


class NoMatchingSignatureError(WebhookVerificationError):
    """No signature in `webhook-signature` matched any configured key.

    `versions` lists the signature versions the header carried (e.g. ``("v1", "v2")``) and
    `checked` how many well-formed entries were compared, so a receiver can log *why*.
    """

    def __init__(
        self,
        *,
        msg_id: str,
        timestamp: int,
        versions: tuple[str, ...],
        checked: int,
        hint: str = "",
    ) -> None:
        shown = ", ".join(versions) if versions else "none"
        message = (
            f"no matching signature for message {msg_id!r} "
            f"({checked} well-formed entries checked; versions seen: {shown})"
        )
        super().__init__(f"{message}; {hint}" if hint else message)
        self.msg_id = msg_id
        self.timestamp = timestamp
        self.versions = versions
        self.checked = checked
        self.hint = hint


class InvalidPayloadError(WebhookVerificationError):
    """The signature matched but the body is not UTF-8 JSON, or was not bytes/str at all."""

    def __init__(self, *, msg_id: str, reason: str) -> None:
        super().__init__(f"invalid payload for message {msg_id!r}: {reason}")
        self.msg_id = msg_id
        self.reason = reason


class DuplicateMessageError(WebhookVerificationError):
    """This `webhook-id` was already accepted within the tolerance window.

    The signature was valid: the message is either a replay or a redelivery of something the
    receiver already accepted, so answering 2xx without reprocessing is usually right.
    """

    def __init__(self, *, msg_id: str, timestamp: int) -> None:
        super().__init__(f"message {msg_id!r} was already accepted (duplicate webhook-id)")
        self.msg_id = msg_id
        self.timestamp = timestamp


class InvalidSecretError(ValueError):
    """A configured key is malformed: a configuration error, raised by the constructor.

    `index` is the key's position in the list given to `Webhook` (0 for a single key). The
    key itself is never part of the error.
    """

    def __init__(self, *, index: int, reason: str) -> None:
        super().__init__(f"invalid webhook key #{index}: {reason}")
        self.index = index
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (type(self), self.args, self.__dict__))
