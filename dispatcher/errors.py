"""Every error the service means, as one tree rooted at `WebhooksError`.

    WebhooksError
    ├── ConfigurationError            a setting or a command-line value cannot be used
    │   ├── SettingsError             settings: every bad WEBHOOKS_* variable at once
    │   ├── DatabaseUrlError          store: WEBHOOKS_DATABASE_URL names no usable store
    │   └── EncryptionKeyError        store.secretbox: WEBHOOKS_ENCRYPTION_KEY is malformed
    ├── CatalogError                  core.catalog: the schemas are not a usable catalog
    │   └── UnknownEventTypeError     the event type is not in the catalog
    ├── EventError                    core.envelope: an event a publisher may not send
    │   └── InvalidEventError         one the consumer would reject (carries the rejection)
    ├── DestinationError              core.destinations: a URL or address the guard refuses
    ├── KeyRequestError               core.scopes: an API key request that cannot be honoured
    ├── PortalRequestError            core.portal: a portal session or origin list refused
    ├── StoreError                    store: the database said no
    │   ├── StoreUnavailableError     an outage (unreachable, read-only, full): retry later
    │   ├── IntegrityViolationError   a write broke a constraint: a caller's bug
    │   ├── NotFoundError             the row to change does not exist
    │   ├── ConflictError             a concurrent writer won a race: retry the operation
    │   └── DecryptionError           a sealed secret opens with none of the keys
    ├── ApiError                      api: a request refused with a stable code
    └── CommandError                  ops: a `webhooks` command failed, said in one line
        ├── UsageError                bad command-line input (exit 2)
        └── ApiClientError            ops.apiclient: the HTTP API refused or is unreachable

Built-in exceptions never carry domain meaning across a module boundary: a `ValueError` is a
caller passing a bad argument (a programming error), never "that endpoint does not exist".
`InvalidEventError` carries a core value (the rejection), so it lives in core.envelope and
subclasses its branch here; every other class is defined here.
"""

from __future__ import annotations


class WebhooksError(Exception):
    """The root: anything the service raises on purpose."""


class ConfigurationError(WebhooksError):
    """A setting or command-line value that cannot be used; reported in one message, exit 2."""


class SettingsError(ConfigurationError):
    """One or more `WEBHOOKS_*` variables are invalid; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        if len(problems) == 1:  # one line for one mistake
            super().__init__(f"invalid configuration: {problems[0]}")
        else:
            super().__init__("invalid configuration:\n  " + "\n  ".join(problems))
        self.problems = problems


class DatabaseUrlError(ConfigurationError):
    """`WEBHOOKS_DATABASE_URL` names no store this service can open (never repeats the URL)."""


class EncryptionKeyError(ConfigurationError):
    """`WEBHOOKS_ENCRYPTION_KEY` is not a comma-separated list of base64 32-byte keys."""


class CatalogError(WebhooksError):
    """The schemas on disk are not a usable catalog (raised by `Catalog.load`)."""


class UnknownEventTypeError(CatalogError):
    """The event type is not in the catalog."""

    def __init__(self, event_type: str) -> None:
        super().__init__(f"{event_type!r} is not in the event catalog")
        self.event_type = event_type


class EventError(WebhooksError):
    """An event that may not be published as asked (conflicting organization, naive time…)."""


class DestinationError(WebhooksError):
    """A URL or address the guard refuses. The message is for humans (a 422, an attempt)."""


class KeyRequestError(WebhooksError):
    """An API key request that cannot be honoured (bad scopes, organization)."""


class PortalRequestError(WebhooksError):
    """A portal session or portal origins request the rules refuse (names the field)."""


class StoreError(WebhooksError):
    """The database refused an operation."""


class StoreUnavailableError(StoreError):
    """The database could not be reached or refused the operation (infrastructure fault)."""


class IntegrityViolationError(StoreError):
    """A write broke a constraint (deliveries of unknown events, a duplicate key…)."""


class NotFoundError(StoreError):
    """The row an operation changes does not exist (an endpoint deleted meanwhile)."""


class ConflictError(StoreError):
    """A concurrent writer won a race the operation cannot resolve by itself: retry it."""


class DecryptionError(StoreError):
    """A sealed secret could not be opened: unknown key, wrong aad, or tampered bytes."""


class ApiError(WebhooksError):
    """Raised by API handlers; rendered as the error shape with its stable code."""

    def __init__(self, code: str, message: str, *, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = headers or {}


class CommandError(WebhooksError):
    """A `webhooks` command failed; the message is one line for the terminal."""


class UsageError(CommandError):
    """Bad command-line input, reported as one line (exit 2)."""


class ApiClientError(CommandError):
    """An API request that did not succeed, explained in one line."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
