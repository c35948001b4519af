"""senselink-plus: an asyncio SDK for the SenseLink Cloud Authentication Record Plus API.

>>> import senselink_plus as slp
>>> async with slp.Client(app_key, app_secret) as client:  # doctest: +SKIP
...     created = await client.create_record("JKQ00009234", "face.jpg")

Set ``SENSELINK_LOG=debug`` (or ``info``, ``warning``) to log the SDK to stderr.
"""

from . import _logging
from ._auth import compute_sign
from ._checkpoint import Checkpoint, CheckpointInUseError, FileCheckpoint
from ._client import DEFAULT_BASE_URL, Client
from ._events import Event, logging_hook
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
from ._http import HttpRequest, HttpResponse, RequestInfo
from ._models import (
    MAX_EXTEND_BYTES,
    MAX_IMAGE_BYTES,
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
    "DEFAULT_BASE_URL",
    "MAX_EXTEND_BYTES",
    "MAX_IMAGE_BYTES",
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
    "RequestInfo",
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
    "compute_sign",
    "logging_hook",
    "split_time_range",
]
