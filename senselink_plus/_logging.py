"""``SENSELINK_LOG=debug|info|warning``: log the SDK to stderr without writing any code."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Mapping

__all__ = ["ENV_LOG", "LEVELS", "configure_from_env", "log_to_stderr"]

ENV_LOG = "SENSELINK_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LOGGER = "senselink_plus"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Ours, so configuring twice replaces it instead of printing each line twice.

    It stands back for a line that another handler prints to the same stream (one the
    application added beside it, or one the line propagates to, as
    ``logging.basicConfig`` sets up): that line is printed once, in the application's
    format. Handlers that write elsewhere (a file, a log shipper) do not count.
    """

    def emit(self, record: logging.LogRecord) -> None:
        if not self._printed_elsewhere(record):
            super().emit(record)

    def _printed_elsewhere(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = logging.getLogger(record.name)
        while logger is not None:
            for handler in logger.handlers:
                if (
                    handler is not self
                    and isinstance(handler, logging.StreamHandler)
                    and handler.stream is self.stream
                    and record.levelno >= handler.level
                ):
                    return True
            logger = logger.parent if logger.propagate else None
        return False


def log_to_stderr(level: int) -> logging.Logger:
    """Send the ``senselink_plus`` logger's records at ``level`` and above to stderr.

    >>> log_to_stderr(logging.DEBUG)  # doctest: +SKIP
    """
    logger = logging.getLogger(LOGGER)
    for handler in list(logger.handlers):
        if isinstance(handler, _StderrHandler):
            logger.removeHandler(handler)
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logger.addHandler(handler)
    logger.setLevel(level)
    return logger


def configure_from_env(environ: Mapping[str, str] = os.environ) -> int | None:
    """Apply ``SENSELINK_LOG`` (as at import); return the level set, or None."""
    value = environ.get(ENV_LOG, "").strip().lower()
    if not value:
        return None
    level = LEVELS.get(value)
    if level is None:
        warnings.warn(
            f"{ENV_LOG}={value!r} is ignored: use one of {', '.join(LEVELS)}",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    log_to_stderr(level)
    return level
