"""The stdio transport: bounded frames, a fast parse, and a JSON-RPC error for every frame that is not a message.

The SDK's ``stdio_server`` reads whole lines (a 200 MB line is buffered, decoded and parsed before anything can refuse
it) and hands a frame that does not parse to the session, which drops it unanswered, so the client waits for its own
timeout. Here stdin is read in chunks: a line longer than ``max_frame_bytes`` is refused as soon as it crosses the
limit and the rest of it is skipped as it streams, never held; a frame that is not JSON gets -32700 (Parse error) and
one that is JSON but not a JSON-RPC message gets -32600 (Invalid Request), both with ``id: null``, and serving goes on.

Parsing: pydantic-core's parser (no NaN) then ``validate_python`` against the message union is much cheaper than the
SDK's ``validate_json`` on a 100,000-record upload (its union members each build the arguments again). What the fast
parser refuses (a lone surrogate escape, deep nesting) is parsed by ``json``, then by the SDK's own adapter, so such
values still reach the tools, which say what is wrong with them. The SDK's descriptor handling is reused: while
serving, fd 0 and fd 1 point elsewhere, so a stray print cannot corrupt the wire.

Waiting: where the event loop can watch stdin (a pipe, socket or terminal), the server waits for it to be readable in
the loop and then reads without blocking, and a frame of at most PIPE_BUF bytes to a stdout pipe is written once the
pipe is writable, instead of handing every frame to a worker thread and back; anything else uses the thread.
"""

from __future__ import annotations

import json
import logging
import os
import select
import stat
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, BinaryIO

import anyio
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
from mcp.shared.message import SessionMessage
from pydantic import ValidationError
from pydantic_core import from_json

from server.codec.gcpause import gc_paused

log = logging.getLogger("clevertap_mcp")

MAX_FRAME_ENV = "CLEVERTAP_MCP_MAX_FRAME_BYTES"
DEFAULT_MAX_FRAME_BYTES = 64 * 1024 * 1024
_CHUNK = 1 << 16


class FrameError(Exception):
    """A frame that gets a JSON-RPC error answer instead of reaching the session."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_frame(line: bytes) -> types.JSONRPCMessage | None:
    """One line as a JSON-RPC message; None for a blank line; FrameError for anything else."""
    text = line.decode("utf-8", errors="replace")  # as the SDK does: invalid UTF-8 reaches the tools as U+FFFD
    if not text.strip():
        return None
    adapter = types.jsonrpc_message_adapter
    with gc_paused():
        try:
            parsed = from_json(text, allow_inf_nan=False)
        except ValueError:
            try:
                parsed = json.loads(text, parse_constant=_refuse_constant)
            except (ValueError, RecursionError):
                try:
                    return adapter.validate_json(text, by_name=False)
                except ValidationError as exc:
                    if any(e.get("type") == "json_invalid" for e in exc.errors()):
                        raise FrameError(types.PARSE_ERROR, "Parse error: the frame is not valid JSON.") from None
                    raise FrameError(types.INVALID_REQUEST, _invalid(exc)) from None
        try:
            return adapter.validate_python(parsed, by_name=False)
        except ValidationError as exc:
            raise FrameError(types.INVALID_REQUEST, _invalid(exc)) from None


def _invalid(exc: ValidationError) -> str:
    kinds = "request, notification or response"
    return f"Invalid Request: the frame is JSON but not a JSON-RPC 2.0 {kinds} object (jsonrpc, id, method, params)."


def _error(code: int, message: str) -> SessionMessage:
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=None, error=types.ErrorData(code=code, message=message)))


async def read_frames(
    read: Callable[[int], Any], max_frame_bytes: int, deliver: Callable[[bytes], Any], refuse: Callable[[str], Any]
) -> None:
    """Split what ``read`` returns into lines and hand each to ``deliver``; a line longer than ``max_frame_bytes``
    goes to ``refuse`` once, as soon as it crosses the limit, and is skipped to its end without being kept."""
    pieces: list[bytes] = []
    size = 0
    skipping = False
    while True:
        chunk: bytes = await read(_CHUNK)
        if not chunk:
            if pieces and not skipping:
                await deliver(b"".join(pieces))
            return
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            part = chunk[start:] if end < 0 else chunk[start:end]
            if not skipping:
                if size + len(part) > max_frame_bytes:
                    skipping = True
                    pieces, size = [], 0
                    await refuse(
                        f"Invalid Request: the frame is larger than {max_frame_bytes} bytes and was skipped "
                        f"({MAX_FRAME_ENV} sets the limit)."
                    )
                elif part:
                    pieces.append(part)
                    size += len(part)
            if end < 0:
                break
            if not skipping:
                await deliver(b"".join(pieces))
            pieces, size, skipping = [], 0, False
            start = end + 1


def _claim(fd: int, stream: Any, mode: str, divert: str) -> tuple[BinaryIO, Callable[[], None] | None]:
    """The SDK's claim of a standard descriptor when it has one (see ``mcp.server.stdio``), else the stream's buffer."""
    from mcp.server import stdio as sdk_stdio

    claim = getattr(sdk_stdio, "_claim_fd", None)
    opener = getattr(sdk_stdio, divert, None)
    if claim is None or opener is None:
        log.debug("the SDK's stdio descriptor handling changed shape; using the streams in place")
        return stream.buffer, None
    binary, release = claim(fd, stream, mode, opener)
    return binary, release


_ATOMIC = getattr(select, "PIPE_BUF", 512)


class _Watch:
    """Readiness of stdin and stdout from the event loop; a descriptor it cannot watch falls back to threads."""

    def __init__(self, stdin: Any, stdout: Any) -> None:
        self.input: int | None = _fileno(stdin)
        # Only a pipe promises room for a whole PIPE_BUF write once writable; a socket or terminal with a little room
        # could block the loop inside the write, so those write from the thread.
        output = _fileno(stdout)
        self.output: int | None = output if output is not None and _is_pipe(output) else None

    async def readable(self) -> bool:
        assert self.input is not None
        try:
            await anyio.wait_readable(self.input)
        except (OSError, NotImplementedError, ValueError):  # a regular file, a closed descriptor, no selector
            self.input = None
            return False
        return True

    async def writable(self) -> bool:
        assert self.output is not None
        try:
            await anyio.wait_writable(self.output)
        except (OSError, NotImplementedError, ValueError):
            self.output = None
            return False
        return True


def _is_pipe(fd: int) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(fd).st_mode)
    except OSError:
        return False


def _fileno(stream: Any) -> int | None:
    try:
        return int(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None


class _Pending:
    """Requests read but not yet answered, so that the end of stdin lets them finish instead of dropping them."""

    def __init__(self) -> None:
        self.ids: set[Any] = set()
        self.idle = anyio.Event()
        self.idle.set()

    def read(self, message: types.JSONRPCMessage) -> None:
        if isinstance(message, types.JSONRPCRequest):
            self.ids.add(message.id)
            self.idle = anyio.Event() if self.idle.is_set() else self.idle

    def answered(self, message: Any) -> None:
        if isinstance(message, (types.JSONRPCResponse, types.JSONRPCError)) and message.id is not None:
            self.ids.discard(message.id)
            if not self.ids:
                self.idle.set()


@asynccontextmanager
async def stdio_server(max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, drain_s: float = 130.0) -> AsyncIterator[Any]:
    """``(read_stream, write_stream)`` for ``Server.run`` over this process's stdin and stdout.

    At the end of stdin, requests already read still get their answers (for at most ``drain_s``) before the session
    is told the input ended: a client that writes its calls and closes its end loses no answer, and no write is left
    applied with its result unread."""
    from mcp.shared._context_streams import create_context_streams

    releases: list[Callable[[], None]] = []
    try:
        stdin, release_in = _claim(0, sys.stdin, "rb", "_open_stdin_diversion")
        if release_in is not None:
            releases.append(release_in)
        stdout, release_out = _claim(1, sys.stdout, "wb", "_open_stdout_diversion")
        if release_out is not None:
            releases.append(release_out)

        read_writer, read_stream = create_context_streams[SessionMessage | Exception](0)
        write_stream, write_reader = create_context_streams[SessionMessage](0)
        answers = write_stream.clone()
        read1 = getattr(stdin, "read1", stdin.read)
        watch = _Watch(stdin, stdout)
        pending = _Pending()

        async def read(n: int) -> bytes:
            if watch.input is not None and await watch.readable():
                return os.read(watch.input, n)
            data: bytes = await anyio.to_thread.run_sync(read1, n, abandon_on_cancel=True)
            return data

        async def deliver(line: bytes) -> None:
            try:
                message = parse_frame(line)
            except FrameError as exc:
                await answers.send(_error(exc.code, exc.message))
                return
            if message is not None:
                pending.read(message)
                await read_writer.send(SessionMessage(message))

        async def refuse(message: str) -> None:
            await answers.send(_error(types.INVALID_REQUEST, message))

        async def reader() -> None:
            try:
                async with read_writer, answers:
                    await read_frames(read, max_frame_bytes, deliver, refuse)
                    with anyio.move_on_after(drain_s):
                        await pending.idle.wait()
            except anyio.ClosedResourceError:
                await anyio.lowlevel.checkpoint()

        def write(data: bytes) -> None:
            stdout.write(data)
            stdout.flush()

        async def writer() -> None:
            try:
                async with write_reader:
                    async for session_message in write_reader:
                        line = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                        data = line.encode("utf-8", errors="replace") + b"\n"
                        # A frame of at most PIPE_BUF bytes fits whole once the descriptor is writable.
                        if len(data) <= _ATOMIC and watch.output is not None and await watch.writable():
                            data = data[os.write(watch.output, data) :]
                        if data:
                            await anyio.to_thread.run_sync(write, data)
                        pending.answered(session_message.message)
            except anyio.ClosedResourceError:
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            tg.start_soon(writer)
            yield read_stream, write_stream
    finally:
        for release in reversed(releases):
            release()
