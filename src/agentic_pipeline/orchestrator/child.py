"""Run one stage in a forked child process with a time limit and a memory cap.

Why a child: a PDF that makes the parser loop forever or eat all memory must cost one book a
retry, not the worker. The child gets ``RLIMIT_AS`` (so a runaway allocation raises
``MemoryError`` there) and is killed at the deadline (``StageTimeout``). Fork, not spawn: the
worker has already imported the extractors and loaded the embedder, so a stage starts in
milliseconds. The result (or the exception, rebuilt by class name) comes back over a pipe.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import resource
import signal
import threading
import time
import traceback
from typing import Any, Callable, Iterator

from agentic_pipeline import errors
import ctypes

_CTX = multiprocessing.get_context("fork")


class ChildDied(errors.TransientError):
    """The stage's process died without a result (killed, out of memory, crashed)."""


def run(fn: Callable[..., Any], *args: Any, timeout: float, memory_mb: int | None = None,
        tick: Callable[[], None] | None = None, tick_seconds: float = 5.0, abort: Callable[[], bool] | None = None) -> Any:
    """Call ``fn(*args)`` in a child; return its result or raise its exception (``StageTimeout`` past ``timeout``).

    ``tick`` is called every ``tick_seconds`` while waiting (the caller heartbeats from its own
    thread; this is for progress); ``abort()`` returning True kills the child at once (``ChildDied``).
    """
    recv, send = _CTX.Pipe(duplex=False)
    proc = _CTX.Process(target=_child_main, args=(send, fn, args, memory_mb), daemon=True)
    proc.start()
    send.close()
    try:
        return _wait(proc, recv, timeout, tick, tick_seconds, abort)
    finally:
        recv.close()
        proc.join(timeout=2)  # the child exits right after sending its result
        if proc.is_alive():
            _kill(proc)


@contextlib.contextmanager
def alarm(timeout: float) -> Iterator[None]:
    """A time limit for a stage run in this process: SIGALRM raises ``StageTimeout`` in the main thread.

    Only for our own bounded Python code (it cannot interrupt a C call that never returns); off the
    main thread it is a no-op.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(_sig, _frame):
        raise errors.StageTimeout(f"the stage ran past its time limit of {timeout:g} s and was stopped",
                                  timeout=timeout)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _wait(proc, recv, timeout, tick, tick_seconds, abort):
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            _kill(proc)
            raise errors.StageTimeout(f"the stage ran past its time limit of {timeout:g} s and was killed",
                                      timeout=timeout)
        if abort is not None and abort():
            _kill(proc)
            raise ChildDied("the stage was aborted by a shutdown signal")
        if recv.poll(min(left, tick_seconds, 0.2 if abort else tick_seconds)):
            try:
                kind, payload = recv.recv()
            except EOFError:
                proc.join(timeout=5)
                raise ChildDied(f"the stage process died (exit code {proc.exitcode})") from None
            return _unpack(kind, payload)
        if tick is not None:
            tick()


def _kill(proc) -> None:
    try:
        os.kill(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.join(timeout=5)


def _child_main(send, fn, args, memory_mb) -> None:
    # the worker decides: a Ctrl-C or a SIGTERM to the whole process group (systemd's default stop)
    # must not kill a stage half-way; the worker lets it finish, or kills it (SIGKILL) on a second signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    if memory_mb:
        limit = int(memory_mb) * 1024 * 1024
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError):
            pass
    try:
        result = fn(*args)
        message = ("ok", result)
    except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
        message = ("err", _pack_error(exc))
    try:
        send.send(message)
    except Exception as exc:  # noqa: BLE001 - e.g. an unpicklable result
        send.send(("err", _pack_error(exc)))
    send.close()
    os._exit(0)  # no atexit handlers, no pool cleanup of connections shared with the parent


def _die_with_parent() -> None:
    """Linux: this child gets SIGKILL when the worker dies (a killed worker must not leave a stage running on
    with no time limit, writing for nobody). Elsewhere a no-op; the parent's deadline still applies."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the worker died before the prctl took effect
        os._exit(1)


def _pack_error(exc: BaseException) -> dict[str, Any]:
    message = exc.message if isinstance(exc, errors.PipelineError) else str(exc)
    return {"module": type(exc).__module__, "name": type(exc).__qualname__, "message": message,
            "hint": exc.hint if isinstance(exc, errors.PipelineError) else None,  # what to do reaches the user
            "traceback": "".join(traceback.format_exception(exc))[-4000:]}


def _unpack(kind: str, payload: Any) -> Any:
    if kind == "ok":
        return payload
    raise rebuild_error(payload)


def rebuild_error(info: dict[str, Any]) -> BaseException:
    """The child's exception as the parent can raise it: same class for our errors, else a TransientError."""
    try:
        cls = getattr(importlib.import_module(info["module"]), info["name"])
    except (ImportError, AttributeError):
        cls = None
    if isinstance(cls, type) and issubclass(cls, errors.PipelineError):
        exc = cls(info["message"], hint=info.get("hint"))
    elif cls is MemoryError:
        exc = ChildDied(f"the stage ran out of memory ({info['message'] or 'MemoryError'})")
    else:
        exc = errors.TransientError(f"{info['name']}: {info['message']}")
    exc.child_traceback = info.get("traceback")
    return exc
