"""senselink-plus: an asyncio SDK for the SenseLink Cloud Authentication Record Plus API.

>>> import senselink_plus as slp
>>> async with slp.Client(app_key, app_secret) as client:  # doctest: +SKIP
...     created = await client.create_record("JKQ00009234", "face.jpg")

Set ``SENSELINK_LOG=debug`` (or ``info``, ``warning``) to log the SDK to stderr.
"""

import warnings
from typing import Any

from . import _logging, _public
from ._checkpoint import Checkpoint, CheckpointInUseError, FileCheckpoint
from ._client import Client
from ._events import Event, EventHook, logging_hook
from ._exceptions import (
    APIError,
    AuthenticationError,
    ClientClosedError,
    ConnectError,
    EventLoopError,
    InvalidParameterError,
    NoFaceDetectedError,
    NotFoundError,
    RateLimitError,
    RedirectError,
    RequestTimeout,
    ResponseError,
    SenseLinkError,
    ServerError,
    TransportError,
    ValidationError,
)
from ._http import HttpRequest, HttpResponse
from ._models import (
    CreatedRecord,
    FaceImage,
    Order,
    Record,
    RecordPage,
    Rectangle,
)
from ._pagination import RecordPager
from ._retry import RetryPolicy, Timeout
from ._timeutil import split_time_range
from ._transport import AiohttpTransport, Transport
from ._version import __version__
from ._watch import Watch

# SENSELINK_LOG=debug|info|warning logs the SDK to stderr, as OPENAI_LOG does for openai.
_logging.configure_from_env()

__all__ = [
    "APIError",
    "AiohttpTransport",
    "AuthenticationError",
    "Checkpoint",
    "CheckpointInUseError",
    "Client",
    "ClientClosedError",
    "ConnectError",
    "CreatedRecord",
    "Event",
    "EventHook",
    "EventLoopError",
    "FaceImage",
    "FileCheckpoint",
    "HttpRequest",
    "HttpResponse",
    "InvalidParameterError",
    "NoFaceDetectedError",
    "NotFoundError",
    "Order",
    "RateLimitError",
    "Record",
    "RecordPage",
    "RecordPager",
    "Rectangle",
    "RedirectError",
    "RequestTimeout",
    "ResponseError",
    "RetryPolicy",
    "SenseLinkError",
    "ServerError",
    "Timeout",
    "Transport",
    "TransportError",
    "ValidationError",
    "Watch",
    "__version__",
    "logging_hook",
    "split_time_range",
]

# Tracebacks, reprs and help() name the public home of each class and function, not the
# private module it is written in (senselink_plus.CheckpointInUseError, as users import it).
_public.rehome(globals(), __all__, __name__)

#: Names once exported here and kept importable, with a DeprecationWarning: where each
#: lives now, and why it left the public surface.
_DEPRECATED = {
    "DEFAULT_BASE_URL": (
        "senselink_plus._client",
        "the default is documented (https://link.japancv.co.jp); pass base_url or set "
        "SENSELINK_BASE_URL to change it",
    ),
    "MAX_EXTEND_BYTES": (
        "senselink_plus._models",
        "an extend over the limit raises ValidationError, which names the limit",
    ),
    "MAX_IMAGE_BYTES": (
        "senselink_plus._models",
        "an image over the limit raises ValidationError, which names the limit; "
        "FaceImage.fit shrinks a photo to fit",
    ),
    "RequestInfo": (
        "senselink_plus._exceptions",
        "it is the type of SenseLinkError.request; read its method, path and params",
    ),
    "compute_sign": (
        "senselink_plus._auth",
        "the client signs every request itself",
    ),
}


def __getattr__(name: str) -> Any:
    """Old names, still importable for a while, with a DeprecationWarning."""
    if name in _DEPRECATED:
        module, why = _DEPRECATED[name]
        warnings.warn(
            f"senselink_plus.{name} is deprecated and will be removed in 1.0: {why}",
            DeprecationWarning,
            stacklevel=2,
        )
        import importlib

        return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
