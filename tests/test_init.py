"""The public surface: what `senselink_plus` exports, and the old names it keeps
importable with a DeprecationWarning."""

from __future__ import annotations

import importlib
import traceback
import typing

import pytest

import senselink_plus as slp
import senselink_plus.testing
from senselink_plus import _auth, _client, _exceptions, _models
from tests.conftest import APP_KEY, APP_SECRET

#: DESIGN.md's public API, and what users need to type and catch around it.
PUBLIC = {
    # the client, what its calls take and return
    "Client",
    "CreatedRecord",
    "FaceImage",
    "Order",
    "Record",
    "RecordPage",
    "RecordPager",
    "Rectangle",
    "Watch",
    "split_time_range",
    # checkpoints for watch()
    "Checkpoint",
    "CheckpointInUseError",
    "FileCheckpoint",
    # transports and policies
    "AiohttpTransport",
    "HttpRequest",
    "HttpResponse",
    "RetryPolicy",
    "Timeout",
    "Transport",
    # event hooks
    "Event",
    "EventHook",
    "logging_hook",
    # errors
    "APIError",
    "AuthenticationError",
    "ClientClosedError",
    "ConnectError",
    "EventLoopError",
    "InvalidParameterError",
    "NoFaceDetectedError",
    "NotFoundError",
    "RateLimitError",
    "RedirectError",
    "RequestTimeout",
    "ResponseError",
    "SenseLinkError",
    "ServerError",
    "TransportError",
    "ValidationError",
    "__version__",
}

DEPRECATED = {
    "DEFAULT_BASE_URL": (_client, "base_url"),
    "MAX_EXTEND_BYTES": (_models, "ValidationError"),
    "MAX_IMAGE_BYTES": (_models, "FaceImage.fit"),
    "RequestInfo": (_exceptions, "SenseLinkError.request"),
    "compute_sign": (_auth, "signs every request itself"),
}


def test_all_is_the_public_api() -> None:
    assert set(slp.__all__) == PUBLIC
    assert len(slp.__all__) == len(set(slp.__all__))


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_imports_without_a_warning(name: str) -> None:
    assert getattr(slp, name) is not None


@pytest.mark.parametrize("name", sorted(PUBLIC - {"__version__", "EventHook"}))
def test_every_public_class_and_function_names_its_public_home(name: str) -> None:
    assert getattr(slp, name).__module__ == "senselink_plus"


def test_a_type_alias_is_left_as_it_is() -> None:
    # Python 3.10 takes a generic alias for a type, whose __module__ is read-only.
    from collections.abc import Callable

    from senselink_plus._public import rehome

    alias = Callable[[int], str]
    rehome({"Alias": alias}, ["Alias"], "elsewhere")
    assert alias.__module__ == "collections.abc"


@pytest.mark.parametrize(
    "module", ["senselink_plus.testing", "senselink_plus.postgres", "senselink_plus.otel"]
)
def test_the_optional_modules_name_their_public_home_too(module: str) -> None:
    if module != "senselink_plus.testing":
        pytest.importorskip("asyncpg" if module.endswith("postgres") else "opentelemetry")
    imported = importlib.import_module(module)
    for name in imported.__all__:
        assert getattr(imported, name).__module__ == module, name


def test_a_traceback_shows_the_public_name_of_an_error() -> None:
    try:
        raise slp.CheckpointInUseError("another watcher holds it")
    except slp.SenseLinkError as error:
        shown = "".join(traceback.format_exception(error))
    assert "senselink_plus.CheckpointInUseError: another watcher holds it" in shown


def test_type_hints_of_public_classes_still_resolve() -> None:
    hints = typing.get_type_hints(slp.Record)
    assert hints["record_id"] is int
    assert "request_id" in typing.get_type_hints(slp.ValidationError)
    assert typing.get_type_hints(slp.RecordPage)["records"] == tuple[slp.Record, ...]


def test_event_hook_is_the_type_of_a_hook() -> None:
    def hook(event: slp.Event) -> None:
        return None

    hooks: dict[str, list[slp.EventHook]] = {"response": [hook]}
    assert slp.Client("k", "s", event_hooks=hooks) is not None


@pytest.mark.parametrize("name", sorted(DEPRECATED))
def test_a_deprecated_name_still_imports_with_a_warning_that_says_why(name: str) -> None:
    module, hint = DEPRECATED[name]
    with pytest.warns(DeprecationWarning, match=f"senselink_plus.{name} is deprecated") as seen:
        value = getattr(slp, name)
    assert value is getattr(module, name)
    assert hint in str(seen[0].message)
    assert seen[0].filename == __file__  # the warning points at the caller's line
    assert name not in slp.__all__


def test_from_import_of_a_deprecated_name_warns() -> None:
    with pytest.warns(DeprecationWarning, match="compute_sign"):
        from senselink_plus import compute_sign  # noqa: F401


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'compute_signature'"):
        slp.compute_signature  # noqa: B018


@pytest.mark.parametrize("name", ["base_url", "timeout", "retry"])
def test_client_options_are_read_only(name: str) -> None:
    client = slp.Client(APP_KEY, APP_SECRET, transport=slp.testing.MockTransport(lambda r: None))
    before = getattr(client, name)
    with pytest.raises(AttributeError):
        setattr(client, name, before)
    assert getattr(client, name) is before


def test_with_options_is_the_way_to_other_options() -> None:
    client = slp.Client(APP_KEY, APP_SECRET, transport=slp.testing.MockTransport(lambda r: None))
    policy = slp.RetryPolicy(max_attempts=5)
    slow = client.with_options(timeout=120, retry=policy)
    assert (slow.timeout.total, slow.retry) == (120.0, policy)
    assert (client.timeout.total, client.retry) == (60.0, slp.RetryPolicy())
    assert slow.base_url == client.base_url
