"""One worker: a runtime process, its own Runtime API listener, and what happens to an invocation.

A worker is a process group (``start_new_session``) running the Python bootstrap or a
``provided`` executable, plus the :class:`RuntimeApiServer` it alone talks to (over HTTP, and
for the Python bootstrap over the private channel of ``channel.py``: a socket pair whose other
end the process inherits). The worker turns every way an invocation can end into an
:class:`Outcome`:

- the runtime posted a response or an error (the usual, fast path: no timers beyond one);
- the timeout passed → the group is SIGKILLed, ``Sandbox.Timedout`` /
  ``RequestId: <id> Error: Task timed out after N.NN seconds``;
- the process exited (crash, ``os._exit``, out of memory) → ``Runtime.ExitError`` /
  ``RequestId: <id> Error: Runtime exited with error: signal: killed`` (or ``exit status N``);
- the runtime reported an init error → that error document;
- the runtime broke the channel's frame format, or closed its end and did not exit → the group
  is SIGKILLed, ``Runtime.ExitError`` (``signal: killed``), the reason in the function's log.

The process runs under Linux's ``SCHED_BATCH`` policy (:func:`batch_scheduling`): a worker woken
by an invocation then does not preempt the node's event loop, which goes on with its
iteration (answering, logging) and leaves the CPU at its next wait, or the worker is placed on
an idle CPU; a handler's own child processes inherit the policy.

stdout/stderr are pumped into the function's log (:class:`~stackyard.functions.logs.FunctionLogs`,
service = function name, instance = worker id) together with Lambda's ``START``/``END``/
``REPORT`` lines; the lines of the running invocation are kept for ``LogType=Tail``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ..deadline import Deadline
from ..supervisor.logs import pump, utc_timestamp
from ..supervisor.process import ExitAwareProtocol, signal_group
from .channel import FD_ENV
from .errors import WorkerStartError
from .logs import FunctionLogs
from .runtime_api import Invocation, Outcome, RuntimeApiServer, error_payload

logger = logging.getLogger(__name__)

INIT_TIMEOUT = 10.0
"""Longest initialisation (process start to first ``invocation/next``), as on AWS."""

TAIL_BYTES = 4096
_SIGNALS = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
}

State = Literal["starting", "ready", "busy", "dead"]


@dataclass(frozen=True)
class WorkerSpec:
    """How to start the workers of one function (shared by all its workers)."""

    function: str
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    memory_mb: int
    timeout: float
    arn: str
    channel: bool = False
    """Also give the process a private channel (``channel.py``): Stackyard's own bootstrap."""


class WorkerResult:
    """An invocation's outcome with its log lines and its duration in milliseconds (a plain
    slotted class: its constructor runs compiled)."""

    __slots__ = ("duration_ms", "log", "outcome")

    def __init__(self, outcome: Outcome, log: str, duration_ms: float) -> None:
        self.outcome = outcome
        self.log = log
        self.duration_ms = duration_ms


class Worker:
    """One runtime process serving one invocation at a time."""

    def __init__(
        self,
        spec: WorkerSpec,
        worker_id: str,
        logs: FunctionLogs,
        on_exit: Callable[[Worker], None],
    ) -> None:
        self.spec = spec
        self.id = worker_id
        self.logs = logs
        self.state: State = "starting"
        self.pid = 0
        self.invocations = 0
        self.was_ready = False
        self._on_exit_callback = on_exit
        self._api: RuntimeApiServer | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Future[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._kill_reason: Literal["timeout", "memory", "stop", "init", "protocol"] | None = None
        self._captured: list[str] | None = None
        self._started_at = 0.0
        self._init_ms: float | None = None
        self._max_memory_mb = 0
        self._timer: asyncio.TimerHandle | None = None  # the initialisation's
        self._timed: Invocation | None = None  # the delivered invocation, until its outcome
        self._deadline: Deadline | None = None  # its timeout
        self._status = ProcStatus(0)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.log_stream = log_stream_name()

    @property
    def alive(self) -> bool:
        return self.state != "dead"

    async def start(self) -> None:
        """Open the Runtime API listener and spawn the process (raises ``WorkerStartError``)."""
        loop = self._loop = asyncio.get_running_loop()
        self._api = RuntimeApiServer()
        await self._api.start()
        self._api.on_init_error = self._on_init_error
        env = dict(self.spec.env)
        env["AWS_LAMBDA_RUNTIME_API"] = self._api.address
        env["AWS_LAMBDA_LOG_STREAM_NAME"] = self.log_stream
        ours, theirs = socket.socketpair() if self.spec.channel else (None, None)
        if theirs is not None:
            env[FD_ENV] = str(theirs.fileno())
        self._started_at = time.perf_counter()
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: ExitAwareProtocol(loop),
                *self.spec.argv,
                cwd=self.spec.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
                pass_fds=(theirs.fileno(),) if theirs is not None else (),
            )
        except OSError as exc:
            self._api.close()
            self.state = "dead"
            if ours is not None:
                ours.close()
            raise WorkerStartError(
                f"cannot start {self.spec.argv[0]}: {exc.strerror or exc}"
            ) from exc
        finally:
            if theirs is not None:
                theirs.close()
        if ours is not None:
            await self._api.attach_channel(ours, self._on_violation)
        self._process = asyncio.subprocess.Process(transport, protocol, loop)
        self._exited = protocol.exited
        self.pid = self._process.pid
        self._status = ProcStatus(self.pid)
        batch_scheduling(self.pid)
        assert self._process.stdout is not None and self._process.stderr is not None
        self._tasks = [
            asyncio.create_task(pump(self._process.stdout, self._emitter("stdout"))),
            asyncio.create_task(pump(self._process.stderr, self._emitter("stderr"))),
            asyncio.create_task(self._watch()),
        ]
        self._api.ready.add_done_callback(self._on_ready)
        self._timer = loop.call_later(INIT_TIMEOUT, self._init_timed_out)

    async def wait_ready(self) -> bool:
        """Wait for the first ``invocation/next``; False when the worker died first."""
        assert self._api is not None and self._exited is not None
        if self._api.ready.done():
            return self.alive
        await asyncio.wait([self._api.ready, self._exited], return_when=asyncio.FIRST_COMPLETED)
        return self._api.ready.done() and self.alive

    async def invoke(self, invocation: Invocation, *, tail: bool = False) -> WorkerResult:
        """Run ``invocation`` on this worker and wait for its outcome, whatever it is."""
        assert self._api is not None
        self.state = "busy"
        self.invocations += 1
        captured: list[str] | None = [] if tail else None  # the lines of LogType=Tail
        self._captured = captured
        began = time.perf_counter()
        request_id = invocation.request_id
        self._write("stdout", f"START RequestId: {request_id} Version: $LATEST", sink=False)
        invocation.on_delivered = self._arm_timeout
        if self._kill_reason is not None or self._exited is None or self._exited.done():
            self._fail_current(invocation)
        else:
            self._api.assign(invocation)
        outcome = await invocation.outcome
        self._disarm()
        started = invocation.delivered_at or began
        duration = (time.perf_counter() - started) * 1000
        if tail:
            for _ in range(3):  # let the pipes' last lines in before the tail is cut
                await asyncio.sleep(0)
        if self.alive:
            self.state = "ready"  # the peak memory is sampled by check_memory and at start
        elif self._kill_reason == "memory":
            self._max_memory_mb = self.spec.memory_mb
        self._write("stdout", f"END RequestId: {request_id}", sink=False)
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms"
            f"\tBilled Duration: {max(1, math.ceil(duration))} ms"
            f"\tMemory Size: {self.spec.memory_mb} MB"
            f"\tMax Memory Used: {self._max_memory_mb} MB"
        )
        if self._init_ms is not None and self.invocations == 1:
            report += f"\tInit Duration: {self._init_ms:.2f} ms"
        self._write("stdout", report)
        self._captured = None
        if captured is None:
            return WorkerResult(outcome, "", duration)
        log = ("\n".join(captured) + "\n").encode()[-TAIL_BYTES:].decode("utf-8", "ignore")
        return WorkerResult(outcome, log, duration)

    def check_memory(self) -> None:
        """Kill the worker when its resident size is above the function's memory size; note
        its peak for REPORT's "Max Memory Used" (sampled here, not after every invocation)."""
        if self.state != "busy" or not self.pid:
            return
        rss, peak = self._status.kb(b"VmRSS:", b"VmHWM:")
        if peak is not None:
            self._max_memory_mb = max(self._max_memory_mb, math.ceil(peak / 1024))
        if rss is not None and rss > self.spec.memory_mb * 1024:
            self._kill("memory")

    async def stop(self) -> None:
        """Kill the process group and wait for the process, its pipes and its watcher."""
        if self.state != "dead" or self._process is not None:
            self._kill("stop")
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)
            for task in self._tasks:
                task.cancel()
        if self._api is not None:
            self._api.close()

    # -- internals -------------------------------------------------------------------------------

    def _emitter(self, stream: Literal["stdout", "stderr"]) -> Callable[[str], None]:
        def emit(line: str) -> None:
            self._write(stream, line)

        return emit

    def _write(self, stream: Literal["stdout", "stderr"], line: str, *, sink: bool = True) -> None:
        # START/END stay out of the central (indexed) log; REPORT and the handler's lines go in
        self.logs.write(self.spec.function, self.id, stream, line, sink=sink)
        if self._captured is not None:
            self._captured.append(line)

    def _on_ready(self, _: asyncio.Future[None]) -> None:
        self.was_ready = True
        if self.state == "starting":
            self.state = "ready"
        self._init_ms = (time.perf_counter() - self._started_at) * 1000
        self._max_memory_mb = max(self._max_memory_mb, self._peak_memory_mb())
        if self._timer is not None and self._api is not None and self._api.current is None:
            self._timer.cancel()
            self._timer = None

    def _init_timed_out(self) -> None:
        self._timer = None
        if self._api is not None and not self._api.ready.done():
            self._kill("init")

    def _arm_timeout(self, invocation: Invocation) -> None:
        """The invocation was delivered: its timeout runs from now (kept by the worker's one
        :class:`~stackyard.deadline.Deadline`, not a timer per invocation)."""
        self._disarm()
        assert self._loop is not None
        if self._deadline is None:
            self._deadline = Deadline(self._loop, self._on_deadline)
        self._timed = invocation
        self._deadline.expire_at(self._loop.time() + invocation.timeout)

    def _on_deadline(self) -> None:
        if self._timed is not None:
            self._timed_out(self._timed)

    def _disarm(self) -> None:
        """No invocation is timed any more (and the initialisation is over)."""
        self._timed = None
        if self._deadline is not None:
            self._deadline.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self, invocation: Invocation) -> None:
        if invocation.outcome.done():
            return
        self._kill("timeout")
        message = f"Task timed out after {invocation.timeout:.2f} seconds"
        stamp = utc_timestamp(datetime.now(UTC))
        self._write("stdout", f"{stamp} {invocation.request_id} {message}")
        document = {
            "errorMessage": f"RequestId: {invocation.request_id} Error: {message}",
            "errorType": "Sandbox.Timedout",
        }
        invocation.resolve(Outcome(json.dumps(document).encode(), "Unhandled"))

    def _kill(self, reason: Literal["timeout", "memory", "stop", "init", "protocol"]) -> None:
        if self._kill_reason is None:
            self._kill_reason = reason
        if self._process is not None and self.pid:
            signal_group(self.pid, signal.SIGKILL)
        if self._api is not None:
            self._api.close()

    def _on_violation(self, reason: str) -> None:
        logger.warning("function %s, worker %s killed: %s", self.spec.function, self.id, reason)
        self._write("stderr", f"Runtime channel error: {reason}")
        self._kill("protocol")

    def _on_init_error(self, document: bytes) -> None:
        if self._api is not None and self._api.current is None and self._api.pending is not None:
            self._api.pending.resolve(Outcome(document, "Unhandled"))
        self._kill("init")

    async def _watch(self) -> None:
        assert self._exited is not None and self._process is not None
        await self._exited
        self.state = "dead"
        self._status.close()
        self._disarm()
        if self._deadline is not None:
            self._deadline.cancel()
        if self.pid:
            signal_group(self.pid, signal.SIGKILL)  # leftovers of the group (shell children)
        if self._api is not None:
            current = self._api.current or self._api.pending
            self._api.close()
            if current is not None:
                self._fail_current(current)
        try:
            self._on_exit_callback(self)
        except Exception:  # the pool's bookkeeping must not kill the watcher silently
            logger.exception("worker exit callback failed")

    def _fail_current(self, invocation: Invocation) -> None:
        if invocation.outcome.done():
            return
        if self._api is not None and self._api.init_error is not None:
            invocation.resolve(Outcome(self._api.init_error, "Unhandled"))
            return
        returncode = self._process.returncode if self._process is not None else None
        if self._kill_reason == "memory" or returncode == -signal.SIGKILL or returncode is None:
            reason = "signal: killed"
        elif returncode < 0:
            reason = f"signal: {_SIGNALS.get(signal.Signals(-returncode), str(-returncode))}"
        else:
            reason = f"exit status {returncode}"
        message = f"RequestId: {invocation.request_id} Error: Runtime exited with error: {reason}"
        self._write("stderr", f"{message}\nRuntime.ExitError")
        invocation.resolve(Outcome(error_payload("Runtime.ExitError", message), "Unhandled"))

    def _peak_memory_mb(self) -> int:
        [peak] = self._status.kb(b"VmHWM:")
        return math.ceil(peak / 1024) if peak else self._max_memory_mb


def log_stream_name() -> str:
    """A CloudWatch-style stream name: ``YYYY/MM/DD/[$LATEST]<hex>``."""
    day = datetime.now(UTC).strftime("%Y/%m/%d")
    return f"{day}/[$LATEST]{os.urandom(16).hex()}"


class ProcStatus:
    """``/proc/<pid>/status`` of one process, kept open: each look at it is one ``pread``
    (the kernel makes the text anew at offset 0), not an open, a read and a close."""

    def __init__(self, pid: int) -> None:
        self._fd = -1
        if pid:
            with contextlib.suppress(OSError):
                self._fd = os.open(f"/proc/{pid}/status", os.O_RDONLY | os.O_CLOEXEC)

    def kb(self, *keys: bytes) -> list[int | None]:
        """The ``kB`` fields named ``keys`` (with their colon: ``b"VmRSS:"``), in that order;
        None for one that cannot be read (the process is gone, the field does not exist)."""
        try:
            text = os.pread(self._fd, 16384, 0) if self._fd >= 0 else b""
        except OSError:
            text = b""
        found: list[int | None] = []
        for key in keys:
            at = text.find(b"\n" + key)
            value = None
            if at >= 0:
                fields = text[at + len(key) + 1 : text.find(b"\n", at + 1)].split()
                if fields and fields[0].isdigit():
                    value = int(fields[0])
            found.append(value)
        return found

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def batch_scheduling(pid: int) -> bool:
    """Put process ``pid`` under ``SCHED_BATCH`` (see the module docstring); False where the
    policy does not exist or the system refused (the process then keeps its policy)."""
    policy = getattr(os, "SCHED_BATCH", None)
    if policy is None:
        return False
    try:
        os.sched_setscheduler(pid, policy, os.sched_param(0))
    except OSError:
        return False
    return True
