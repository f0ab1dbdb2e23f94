"""Header lookup: any letter case, any framework's header object, Svix names as fallback."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest
from layers_webhooks import MalformedHeaderError, MissingHeaderError, Webhook
from multidict import CIMultiDict, CIMultiDictProxy

from .fake_frameworks import CaseInsensitiveHeaders
from .material import BODY, NEW_SECRET, NOW, signed


class GetOnly:
    """An object with nothing but a case-insensitive `.get`, like some request wrappers."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = {key.lower(): value for key, value in headers.items()}

    def get(self, key: str, /) -> object:
        return self._headers.get(key.lower())


def meta(headers: Mapping[str, str]) -> dict[str, str]:
    """Django's request.META / a WSGI environ: HTTP_WEBHOOK_ID and friends."""
    environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/json", "wsgi.input": ""}
    environ.update({"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()})
    return environ


CONTAINERS: dict[str, Any] = {
    "dict-lower": lambda h: dict(h),
    "dict-title": lambda h: {k.title(): v for k, v in h.items()},
    "dict-upper": lambda h: {k.upper(): v for k, v in h.items()},
    "dict-mixed": lambda h: {"wEbHoOk-Id" if k == "webhook-id" else k: v for k, v in h.items()},
    "dict-bytes": lambda h: {k.encode(): v.encode() for k, v in h.items()},
    "aiohttp-CIMultiDict": lambda h: CIMultiDict({k.title(): v for k, v in h.items()}),
    "aiohttp-proxy": lambda h: CIMultiDictProxy(CIMultiDict(h)),
    "django-headers": lambda h: CaseInsensitiveHeaders(h, "title"),
    "django-META": meta,
    "werkzeug-EnvironHeaders": lambda h: CaseInsensitiveHeaders(h, "title"),
    "starlette-Headers": lambda h: CaseInsensitiveHeaders(h, "lower"),
    "get-only": GetOnly,
}


@pytest.mark.parametrize("container", CONTAINERS.values(), ids=CONTAINERS.keys())
def test_headers_are_found_in_every_framework_container(container: Any) -> None:
    """The three headers are found whatever the container and the letter case."""
    headers = container({**signed(), "Content-Type": "application/json"})
    assert Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)["type"] == "content.generated"


@pytest.mark.parametrize("container", CONTAINERS.values(), ids=CONTAINERS.keys())
def test_svix_header_names_are_a_fallback(container: Any) -> None:
    """svix-id / svix-timestamp / svix-signature work where webhook-* are absent."""
    headers = {k.replace("webhook-", "svix-"): v for k, v in signed().items()}
    assert Webhook(NEW_SECRET).verify_at(BODY, container(headers), NOW) is not None


def test_webhook_names_win_over_svix_names() -> None:
    """When both spellings are present the webhook-* values are the ones verified."""
    headers = {**signed(), "svix-id": "msg_other", "svix-signature": "v1,junk"}
    assert Webhook(NEW_SECRET).verify_at(BODY, headers, NOW) is not None


def test_names_fall_back_one_by_one() -> None:
    """Each header falls back independently, as the svix library does."""
    good = signed()
    headers = {
        "webhook-id": good["webhook-id"],
        "svix-timestamp": good["webhook-timestamp"],
        "svix-signature": good["webhook-signature"],
    }
    assert Webhook(NEW_SECRET).verify_at(BODY, headers, NOW) is not None


def test_a_header_repeated_with_the_same_value_is_fine() -> None:
    """A multidict carrying one header twice with equal values verifies."""
    headers = CIMultiDict(signed())
    headers.add("Webhook-Id", signed()["webhook-id"])
    assert Webhook(NEW_SECRET).verify_at(BODY, headers, NOW) is not None


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_header_repeated_with_different_values_is_malformed(name: str) -> None:
    """Two different values for one header are rejected rather than guessed between."""
    headers = CIMultiDict(signed())
    headers.add(name.upper(), "v1,other" if name == "webhook-signature" else "1")
    with pytest.raises(MalformedHeaderError, match="twice") as caught:
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)
    assert caught.value.header == name


def test_two_spellings_in_a_plain_dict_are_a_repeat() -> None:
    """A dict with 'webhook-id' and 'Webhook-Id' holding different ids is malformed."""
    headers = {**signed(), "Webhook-Id": "msg_other"}
    with pytest.raises(MalformedHeaderError, match="twice"):
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)


@pytest.mark.parametrize(
    ("value", "reason"),
    [(12345, "got int"), (["msg_1"], "got list"), (b"msg_\xff", "not ASCII")],
)
def test_a_header_value_that_is_not_text_is_malformed(value: object, reason: str) -> None:
    """Values other than str or ASCII bytes raise MalformedHeaderError naming the header."""
    headers: dict[str, object] = {**signed(), "webhook-id": value}
    with pytest.raises(MalformedHeaderError, match=reason) as caught:
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)
    assert caught.value.header == "webhook-id"


def test_a_none_value_counts_as_absent() -> None:
    """A header mapped to None is treated as missing, not as the text 'None'."""
    headers: dict[str, object] = {**signed(), "webhook-signature": None}
    with pytest.raises(MissingHeaderError) as caught:
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)
    assert caught.value.header == "webhook-signature"
    assert "'svix-signature'" in str(caught.value)


def test_unrelated_keys_of_any_type_are_ignored() -> None:
    """Non-string keys and look-alike names (underscores, prefixes) are not headers."""
    headers: dict[object, object] = {}
    headers.update(signed())
    headers |= {
        42: object(),
        None: None,
        ("webhook-id",): "tuple",
        "webhook_id": "msg_other",
        "x-webhook-id": "msg_other",
        "HTTP_X_WEBHOOK_ID": "msg_other",
    }
    assert Webhook(NEW_SECRET).verify_at(BODY, headers, NOW) is not None


@pytest.mark.parametrize("headers", [None, 42, "webhook-id: x", [("webhook-id", "x")]])
def test_something_that_is_not_a_header_container_is_malformed(headers: object) -> None:
    """Passing no mapping at all raises MalformedHeaderError, not AttributeError."""
    with pytest.raises(MalformedHeaderError, match="expected a mapping"):
        Webhook(NEW_SECRET).verify_at(BODY, headers, NOW)  # type: ignore[arg-type]
