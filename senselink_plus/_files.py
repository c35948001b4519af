"""Local files the SDK reads (face photos) and writes (snapshots, watch checkpoints):
checked early, read within a limit, replaced atomically, and failures reported as
`SenseLinkError`s."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat

from ._checks import check_path
from ._exceptions import SenseLinkError, ValidationError

__all__ = [
    "check_target_path",
    "create_temp_beside",
    "output_target",
    "read_regular_file",
    "remove_stale_temps",
    "write_atomically",
    "write_file",
]

#: Temp files are named ``.senselink-<random>.part`` beside their target.
TEMP_PREFIX, TEMP_SUFFIX = ".senselink-", ".part"
_TEMP_FLAGS = (
    os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
)


_READ_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_regular_file(path: str, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``limit`` of them.

    Anything else is refused before it is opened (a FIFO would block, ``/dev/zero``
    never ends); at most ``limit + 1`` bytes are read, so a file that grows, or whose
    size was misreported, is refused too. Raises `ValidationError` (field ``what``) for a
    file that is not one or is too big, and OSError when it cannot be read.
    """

    def refuse(reason: str) -> ValidationError:
        return ValidationError(f"{what} {path!r} {reason}", field=what)

    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise refuse(f"is {_kind(info.st_mode)}, not a regular file")
    if info.st_size > limit:
        raise refuse(f"is {info.st_size} bytes; the limit is {limit}")
    # Non-blocking: if a FIFO replaced the file since the stat, opening it cannot hang.
    fd = os.open(path, _READ_FLAGS)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse(f"is {_kind(info.st_mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        os.close(fd)
    if size > limit:
        raise refuse(f"is over {limit} bytes, the limit")
    return b"".join(chunks)


def check_target_path(value: object, field: str) -> str:
    """A path a file can be written to: its folder exists and it is not a folder."""
    path = check_path(value, field)
    if os.path.isdir(path):
        raise ValidationError(f"{field} {path!r} is a folder", field=field)
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ValidationError(f"{field} {path!r} is in a folder that does not exist", field=field)
    return path


def output_target(path: str, field: str) -> tuple[str, bool]:
    """Where writing to ``path`` goes: its real path (symlinks followed, so a link stays a
    link and its target is written), and whether to write *through* it.

    A regular file, or none yet, is replaced atomically (False). A FIFO or a character
    device (``/dev/null``, ``/dev/stdout``, a shell's ``>(...)``) is written through
    (True): renaming over it would replace the device node itself. A folder, block
    device or socket is refused with `ValidationError`.
    """
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real, False
    except OSError as exc:
        raise ValidationError(
            f"{field} {path!r} cannot be examined: {exc.strerror or exc}", field=field
        ) from None
    if stat.S_ISREG(mode):
        return real, False
    if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
        return real, True
    raise ValidationError(
        f"{field} {path!r} is {_kind(mode)}; nothing is written to it", field=field
    )


def open_through(path: str) -> int:
    """Open an existing FIFO or character device for writing (no create, no truncate)."""
    return os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0))


def write_file(path: str, data: bytes, field: str) -> None:
    """Write ``data`` to ``path`` as `output_target` says: through a FIFO or device, else
    atomically (the real path of a symlink is replaced, never the link)."""
    real, through = output_target(path, field)
    if not through:
        write_atomically(real, data)
        return
    try:
        with os.fdopen(open_through(real), "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise SenseLinkError(f"cannot write {path!r}: {exc.strerror or exc}") from None


def replace_with(tmp: str, path: str) -> None:
    """Rename ``tmp`` over ``path``, unless ``path`` is now something a rename must not
    replace (a symlink, a device, a FIFO): then OSError, and ``path`` is left alone."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = stat.S_IFREG
    if not stat.S_ISREG(mode):
        raise OSError(f"{path!r} is no longer a regular file; not replaced")
    os.replace(tmp, path)


def create_temp_beside(path: str, prefix: str = TEMP_PREFIX) -> tuple[int, str]:
    """Create a new empty temp file in ``path``'s folder; return its fd and name
    (``<prefix><16 hex digits>.part``).

    Created with mode 0o666 so the kernel applies the process umask itself, as for any
    new file: the umask is never read (reading it means setting it, which races every
    other thread creating files). Raises OSError.
    """
    directory = os.path.dirname(os.path.abspath(path))
    for _ in range(100):
        tmp = os.path.join(directory, f"{prefix}{secrets.token_hex(8)}{TEMP_SUFFIX}")
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temp file name in {directory!r}")


def write_atomically(path: str, data: bytes, *, durable: bool = False) -> None:
    """Replace ``path`` with ``data`` all at once: a temp file beside it, then a rename.

    ``durable`` also fsyncs before the rename (a checkpoint must survive a crash). The
    file gets the usual permissions (0o666 less the umask), as `create_temp_beside` makes it.
    """
    try:
        fd, tmp = create_temp_beside(path)
    except OSError as exc:
        raise SenseLinkError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        replace_with(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SenseLinkError(f"cannot write {path!r}: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _is_temp_of(name: str, prefix: str) -> bool:
    """Whether ``name`` is ``<prefix><16 hex digits>.part``."""
    if not (name.startswith(prefix) and name.endswith(TEMP_SUFFIX)):
        return False
    middle = name[len(prefix) : -len(TEMP_SUFFIX)]
    return len(middle) == 16 and all(c in "0123456789abcdef" for c in middle)


def remove_stale_temps(path: str, prefix: str) -> int:
    """Remove the temp files ``create_temp_beside(path, prefix)`` left (a writer killed
    mid-write): regular files of this user named ``<prefix><16 hex>.part``. Only for a
    caller that knows no other writer uses ``prefix`` (it holds the lock). Returns how
    many were removed."""
    directory = os.path.dirname(os.path.abspath(path))
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    removed = 0
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    for name in names:
        if not _is_temp_of(name, prefix):
            continue
        full = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            info = os.lstat(full)
            if stat.S_ISREG(info.st_mode) and (uid is None or info.st_uid == uid):
                os.unlink(full)
                removed += 1
    return removed
