"""The error tree: its shape, its picture, its attributes, and that it survives pickling."""

from __future__ import annotations

import pickle

import layers_webhooks
import pytest
from layers_webhooks import (
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
from layers_webhooks import errors as errors_module

VERIFICATION_ERRORS = [
    MissingHeaderError,
    MalformedHeaderError,
    TimestampTooOldError,
    TimestampTooNewError,
    NoMatchingSignatureError,
    InvalidPayloadError,
    DuplicateMessageError,
]

INSTANCES: list[Exception] = [
    MissingHeaderError(header="webhook-id"),
    MalformedHeaderError(header="webhook-timestamp", reason="leading zero"),
    TimestampTooOldError(msg_id="msg_1", timestamp=100, now=500.5, tolerance=300),
    TimestampTooNewError(msg_id="msg_1", timestamp=900, now=500, tolerance=300),
    NoMatchingSignatureError(msg_id="msg_1", timestamp=100, versions=("v1", "v2"), checked=1),
    InvalidPayloadError(msg_id="msg_1", reason="not JSON"),
    DuplicateMessageError(msg_id="msg_1", timestamp=100),
    InvalidSecretError(index=2, reason="not valid base64"),
]


@pytest.mark.parametrize("cls", VERIFICATION_ERRORS)
def test_every_verification_error_is_a_webhook_verification_error(cls: type[Exception]) -> None:
    """Each specific verification error can be caught as WebhookVerificationError."""
    assert issubclass(cls, WebhookVerificationError)
    assert not issubclass(cls, ValueError)


def test_invalid_secret_is_a_configuration_error_outside_the_tree() -> None:
    """InvalidSecretError is a ValueError and deliberately not a WebhookVerificationError."""
    assert issubclass(InvalidSecretError, ValueError)
    assert not issubclass(InvalidSecretError, WebhookVerificationError)
    assert WebhookVerificationError.__mro__[1] is Exception


def test_the_errors_module_docstring_draws_every_public_error() -> None:
    """The tree drawn in errors.py names every exception the package exports."""
    exported = {
        name
        for name in layers_webhooks.__all__
        if isinstance(getattr(layers_webhooks, name), type)
        and issubclass(getattr(layers_webhooks, name), Exception)
    }
    assert exported == {
        *map(lambda c: c.__name__, VERIFICATION_ERRORS),
        "WebhookVerificationError",
        "InvalidSecretError",
    }
    doc = errors_module.__doc__ or ""
    assert all(f"── {name}" in doc for name in exported)


@pytest.mark.parametrize("error", INSTANCES, ids=lambda e: type(e).__name__)
def test_errors_survive_pickling_with_their_attributes(error: Exception) -> None:
    """Errors cross process boundaries (task queues) with message and attributes intact."""
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just dumped
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)


def test_error_messages_explain_themselves() -> None:
    """Messages name the header, the offset from now and the tolerance."""
    assert str(INSTANCES[0]) == "missing required header 'webhook-id' (or 'svix-id')"
    assert str(INSTANCES[2]) == (
        "webhook-timestamp 100 is 400 s in the past, beyond the 300 s tolerance (message 'msg_1')"
    )
    assert str(INSTANCES[3]) == (
        "webhook-timestamp 900 is 400 s in the future, beyond the 300 s tolerance (message 'msg_1')"
    )
    assert str(INSTANCES[4]) == (
        "no matching signature for message 'msg_1' (1 well-formed entries checked; "
        "versions seen: v1, v2)"
    )
