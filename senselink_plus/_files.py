"""Local files the SDK writes (snapshots, watch checkpoints): checked early, replaced
atomically, and failures reported as `SenseLinkError`s."""

from __future__ import annotations

import contextlib
import os
import tempfile

from ._checks import check_path
from ._exceptions import SenseLinkError, ValidationError

__all__ = ["check_target_path", "write_atomically"]


def check_target_path(value: object, field: str) -> str:
    """A path a file can be written to: its folder exists and it is not a folder."""
    path = check_path(value, field)
    if os.path.isdir(path):
        raise ValidationError(f"{field} {path!r} is a folder", field=field)
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValidationError(f"{field} {path!r} is in a folder that does not exist", field=field)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomically(path: str, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` all at once: a temp file beside it, then a rename.

    ``durable`` also fsyncs before the rename (a checkpoint must survive a crash). The
    file gets the usual permissions (0o666 less the umask), not mkstemp's 0o600.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".senselink-", suffix=".part")
    except OSError as exc:
        raise SenseLinkError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SenseLinkError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
