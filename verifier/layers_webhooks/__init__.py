"""Verify Layers webhooks: Standard Webhooks signatures, stdlib only, strict.

    from layers_webhooks import Webhook, WebhookVerificationError

    wh = Webhook("whsec_...")          # or ["whsec_new...", "whsec_old..."], newest first
    try:
        event = wh.verify(raw_body_bytes, request.headers)   # the parsed JSON
    except WebhookVerificationError:
        ...                                                  # answer 400

A drop-in for `standardwebhooks.Webhook` (same `verify` and `sign` calls) that also reads
`svix-*` headers, rotates secrets, checks `v1a` (ed25519) signatures with the optional
``layers-webhooks[ed25519]`` extra, guards against replays, and raises nothing outside the
`WebhookVerificationError` tree from `verify`. See README.md for the framework recipes.
"""

from .errors import (
    DuplicateMessageError,
    InvalidPayloadError,
    InvalidSecretError,
    MalformedHeaderError,
    MissingHeaderError,
    NoMatchingSignatureError,
    TimestampTooNewError,
    TimestampTooOldError,
    WebhookVerificationError,
)
from .replay import InMemorySeenIds, SeenIdStore
from .webhook import Webhook

__version__ = "0.1.0"

__all__ = [
    "DuplicateMessageError",
    "InMemorySeenIds",
    "InvalidPayloadError",
    "InvalidSecretError",
    "MalformedHeaderError",
    "MissingHeaderError",
    "NoMatchingSignatureError",
    "SeenIdStore",
    "TimestampTooNewError",
    "TimestampTooOldError",
    "Webhook",
    "WebhookVerificationError",
    "__version__",
]
