"""The ``senselink-plus`` command: demo, emulator, records, upload, image, watch."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import stat
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ._checks import check_int
from ._cli_args import app_secret, build_parser, read_times
from ._client import Client
from ._endpoints import check_threshold, encode_extend, window_bounds
from ._exceptions import SenseLinkError, ValidationError
from ._files import (
    check_target_path,
    create_temp_beside,
    open_through,
    output_target,
    replace_with,
)
from ._logging import log_to_stderr
from ._models import FaceImage, Order, Record
from ._output import RecordWriter
from ._parquet import ParquetRecordWriter, require_pyarrow

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
# 128 + the signal's number, as a shell reports a command a signal ended.
EXIT_SIGINT, EXIT_SIGPIPE, EXIT_SIGTERM = 130, 141, 143


def _client(args: argparse.Namespace) -> Client:
    return Client(
        args.app_key,
        app_secret(args),
        base_url=args.base_url,
        allow_insecure_http=args.allow_insecure_http,
    )


@contextlib.contextmanager
def _replacing(path: Path, *, binary: bool = False) -> Iterator[IO[Any]]:
    """A file (text; bytes when ``binary``) that replaces ``path`` only when the block
    succeeds.

    Until then ``path`` is untouched: the output goes to a temp file beside it (keeping
    ``path``'s permissions when it exists), removed on any failure or interrupt. A
    symlink's target is replaced (the link stays); a FIFO or a device (``/dev/null``,
    a shell's ``>(...)``) is written through, never replaced.
    """
    real, through = output_target(check_target_path(path, "--output"), "--output")
    if through:
        with _fdopen(open_through(real), binary) as out:
            yield out
        return
    target = real
    fd, tmp = create_temp_beside(target)
    try:
        with _fdopen(fd, binary) as out:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
            yield out
        replace_with(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        print(
            f"senselink-plus: {target} left as it was; the partial output was discarded",
            file=sys.stderr,
        )
        raise


def _fdopen(fd: int, binary: bool) -> IO[Any]:
    if binary:
        return os.fdopen(fd, "wb")
    return os.fdopen(fd, "w", encoding="utf-8", newline="")


class Progress:
    """A one-line progress report on stderr: share of the time range, records, rate."""

    def __init__(self, stream: IO[str], start: datetime, end: datetime, order: Order) -> None:
        self._stream = stream
        self._start = start.timestamp()
        self._span = max(end.timestamp() - self._start, 1e-9)
        self._descending = order is Order.DESCENDING
        self._began = time.monotonic()
        self._shown = 0.0
        self.count = 0

    def update(self, record: Record) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._shown >= 0.2:
            self._shown = now
            self._draw(record.created_at.timestamp(), now)

    def _draw(self, at: float, now: float) -> None:
        share = min(max((at - self._start) / self._span, 0.0), 1.0)
        if self._descending:
            share = 1.0 - share
        rate = self.count / max(now - self._began, 1e-9)
        self._stream.write(f"\r{share:6.1%}  {self.count:,} records  {rate:,.0f}/s ")
        self._stream.flush()

    def close(self) -> None:
        self._draw(self._start + (0 if self._descending else self._span), time.monotonic())
        self._stream.write("\n")
        self._stream.flush()


def _check_parquet(args: argparse.Namespace) -> None:
    """Before any request: parquet needs a file to write and pyarrow to write it."""
    if args.format != "parquet":
        return
    if args.output is None:
        raise ValidationError(
            "--format parquet writes a file: give -o FILE (e.g. -o records.parquet)",
            field="--output",
        )
    require_pyarrow()


def _open_writer(
    stack: contextlib.ExitStack[Any], args: argparse.Namespace
) -> RecordWriter | ParquetRecordWriter:
    """The writer of ``--format`` on ``--output`` (or stdout). A file is replaced only
    once every record is in: a failure or Ctrl-C leaves an existing one as it was."""
    if args.format == "parquet":
        parquet = ParquetRecordWriter(stack.enter_context(_replacing(args.output, binary=True)))
        stack.callback(parquet.close)  # the footer, before the file is closed and renamed
        return parquet
    out: IO[str] = stack.enter_context(_replacing(args.output)) if args.output else sys.stdout
    return RecordWriter(out, args.format)


async def _records(args: argparse.Namespace) -> int:
    order = Order.ASCENDING if args.order == "asc" else Order.DESCENDING
    start, end = window_bounds(args.time_from, args.time_to)
    _check_parquet(args)
    async with _client(args) as client:
        pager = client.records(
            start,
            end,
            sn=args.sn,
            order=order,
            max_items=args.max_items,
            concurrency=args.concurrency,
        )
        progress = Progress(sys.stderr, start, end, order) if sys.stderr.isatty() else None
        with contextlib.ExitStack() as stack:
            writer = _open_writer(stack, args)
            writer.header()
            async for record in pager:
                writer.write(record)
                if progress is not None:
                    progress.update(record)
        if progress is not None:
            progress.close()
    print(f"{writer.count} records", file=sys.stderr)
    return EXIT_OK


async def _watch(args: argparse.Namespace) -> int:
    if args.max_items is not None:
        check_int(args.max_items, "--max-items")
    stopped: list[str] = []
    async with _client(args) as client:
        writer = RecordWriter(sys.stdout, args.format)
        writer.header()
        # Closed on the way out (not by the garbage collector), so the final save and
        # the checkpoint's lock release happen before the client closes.
        async with client.watch(
            sn=args.sn, since=args.since, poll_interval=args.interval, checkpoint=args.checkpoint
        ) as watch:
            # The pattern the README gives a service: a stop signal calls watch.stop(),
            # which ends the loop below at the next record boundary, after saving (the
            # record written is acknowledged). `stopped` names the signal for the exit
            # code. asyncio.run removes the handlers when it closes its loop.
            loop = asyncio.get_running_loop()
            for signum, why in _STOP_SIGNALS:
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    # Not on Windows (Ctrl-C is a KeyboardInterrupt there), nor off the
                    # main thread.
                    loop.add_signal_handler(signum, _stop_watch, watch.stop, why, stopped)
            async for record in watch:
                writer.write(record)
                sys.stdout.flush()
                if args.max_items is not None and writer.count >= args.max_items:
                    break
    if stopped:
        _stopped_line(args, stopped[0])
        return _EXIT_BY_SIGNAL.get(stopped[0], EXIT_SIGINT)
    return EXIT_OK


def _stop_watch(stop: Callable[[], None], why: str, stopped: list[str]) -> None:
    """A stop signal came: note which, and call ``watch.stop``."""
    stopped.append(why)
    stop()


async def _upload(args: argparse.Namespace) -> int:
    # Checked once here, so a bad value is one usage error rather than N failed uploads.
    extend: Any = None if args.extend is None else encode_extend(args.extend)
    if args.threshold is not None:
        check_threshold(args.threshold)
    check_int(args.concurrency, "--concurrency")
    failures = 0
    async with _client(args) as client:
        gate = asyncio.Semaphore(args.concurrency)

        async def one(path: Path) -> tuple[Path, str, bool]:
            async with gate:
                try:
                    # Reading and re-encoding a photo is blocking work: off the loop.
                    image = (
                        await asyncio.to_thread(FaceImage.from_path, path, fit=True)
                        if args.fit
                        else path
                    )
                    created = await client.create_record(
                        args.sn, image, threshold=args.threshold, extend=extend
                    )
                except SenseLinkError as exc:
                    return path, f"error {type(exc).__name__}: {exc}", False
                return path, f"record {created.record_id} image {created.image_id}", True

        # Uploads run together; lines come in argument order, each as soon as it and
        # those before it are done.
        tasks = [asyncio.ensure_future(one(p)) for p in args.images]
        try:
            for task in tasks:
                path, text, ok = await task
                failures += not ok
                print(f"{path}\t{text}", flush=True)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return EXIT_FAILED if failures else EXIT_OK


async def _image(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        if args.output is None:
            data = await client.get_image(args.image_id)
            sys.stdout.buffer.write(data)
            sys.stdout.buffer.flush()
        else:
            size = await client.download_image(args.image_id, args.output)
            print(f"wrote {size} bytes to {args.output}", file=sys.stderr)
    return EXIT_OK


async def _demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    await run_demo(workdir=args.out_dir)
    return EXIT_OK


async def _emulator(args: argparse.Namespace) -> int:
    from ._cli_emulator import run_emulator

    return await run_emulator(args)


#: Commands that stop cleanly on SIGTERM, SIGHUP and SIGQUIT as on Ctrl-C, with a line
#: naming the signal: records (`_stoppable` cancels it) and watch (whose own loop calls
#: ``watch.stop()``). The emulator has its own handler.
STOPPABLE = frozenset({"records", "watch"})


#: Signals that stop records and watch cleanly (partial output removed, checkpoint
#: saved), by the name the stop line uses; SIGHUP and SIGQUIT only where they exist.
_STOP_SIGNALS: tuple[tuple[signal.Signals, str], ...] = (
    (signal.SIGTERM, "SIGTERM"),
    (signal.SIGINT, "Ctrl-C"),
    *((getattr(signal, name), name) for name in ("SIGHUP", "SIGQUIT") if hasattr(signal, name)),
)
_EXIT_BY_SIGNAL = {"SIGTERM": EXIT_SIGTERM, "SIGHUP": 129, "SIGQUIT": 131}


async def _stoppable(
    command: Callable[[argparse.Namespace], Awaitable[int]], args: argparse.Namespace
) -> int:
    """Run ``command`` (records); SIGTERM cancels it like Ctrl-C does, so it stops
    cleanly (the output is flushed and closed, a partial file removed). The watch
    command stops through ``watch.stop()`` instead (see `_watch`)."""
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    stopped: list[str] = []

    def stop(why: str) -> None:
        if task is not None and not stopped:
            stopped.append(why)
            task.cancel()

    # Ctrl-C too is turned into a cancel at an await: a KeyboardInterrupt raised between
    # any two bytecodes (Python 3.10's asyncio) can leave a coroutine never awaited.
    installed: list[signal.Signals] = []
    for signum, why in _STOP_SIGNALS:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            # Not on Windows, nor off the main thread.
            loop.add_signal_handler(signum, stop, why)
            installed.append(signum)
    try:
        return await command(args)
    except asyncio.CancelledError:
        if not stopped:
            raise
        _stopped_line(args, stopped[0])
        return _EXIT_BY_SIGNAL.get(stopped[0], EXIT_SIGINT)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _stopped_line(args: argparse.Namespace, why: str) -> None:
    checkpoint = getattr(args, "checkpoint", None)
    kept = f"; position saved in {checkpoint}" if checkpoint else ""
    with contextlib.suppress(OSError):
        print(f"senselink-plus: stopped by {why}{kept}", file=sys.stderr, flush=True)


def _quiet_stdout() -> None:
    """After a broken pipe, point stdout at devnull so the interpreter's last flush does
    not print a second error."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


COMMANDS = {
    "demo": _demo,
    "emulator": _emulator,
    "records": _records,
    "upload": _upload,
    "image": _image,
    "watch": _watch,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 a call failed, 2 bad usage)."""
    args = build_parser().parse_args(argv)
    verbosity = args.verbose + getattr(args, "sub_verbose", 0)
    if verbosity:
        log_to_stderr(logging.DEBUG if verbosity > 1 else logging.INFO)
    command = COMMANDS[args.command]
    try:
        read_times(args)
        if args.command == "records":
            return asyncio.run(_stoppable(command, args))
        return asyncio.run(command(args))
    except KeyboardInterrupt:
        if args.command in STOPPABLE:
            _stopped_line(args, "Ctrl-C")
        return EXIT_SIGINT
    except BrokenPipeError:
        # The reader went away (`records ... | head`): nothing is wrong, stop quietly.
        _quiet_stdout()
        return EXIT_SIGPIPE
    except ValidationError as exc:
        print(f"senselink-plus: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SenseLinkError as exc:
        print(f"senselink-plus: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"senselink-plus: error: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
