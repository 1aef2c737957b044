"""The JavaScript sandbox for custom conditions (§6.5): one mini-racer V8 isolate per thread, hard limits.

Each thread that runs JavaScript gets its own isolate (``threading.local``), so concurrent calls never share
one. The isolate is prepared once by ``_runtime.js`` (timers and off-heap memory removed, ``Date`` bound to
the injected clock, built-ins frozen, global bindings locked) and recycled every 10,000 calls and after any
timeout or out-of-memory. Inputs travel as one JSON string parsed inside V8 per call; the result comes back
as JSON (≤ 256 KiB). Sources are limited to 64 KiB; ``print``/``console.log`` output is capped at 8 KiB.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import threading
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import msgspec
from py_mini_racer import JSEvalException, JSOOMException, JSTimeoutException, MiniRacer, mini_racer

from innkeeper.personalize.conditions.context import (
    ConditionContext,
    dumps,
    encode,
    guest_for_js,
    to_millis,
    without_alias,
)
from innkeeper.personalize.conditions.errors import ConditionError

__all__ = ["MAX_SOURCE_BYTES", "JsResult", "JsSandbox", "needs_of_source"]

logger = logging.getLogger(__name__)

MAX_SOURCE_BYTES = 64 * 1024
RECYCLE_AFTER_CALLS = 10_000
_RUNTIME = resources.files(__package__).joinpath("_runtime.js").read_text(encoding="utf-8")
_WARM_UP = (
    "JSON.stringify([new Intl.DateTimeFormat('en-US', {timeZone: 'Europe/Dublin', hourCycle: 'h23', weekday: 'long',"
    " year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric'})"
    ".formatToParts(new Date()),"
    " guest.sessions.map(function (s) { return s.events.length; }), /a/i.test('A'), String(1.5).toLowerCase()])"
)
_WARM_UP_TIMEOUT_S = 5.0
_STRING = msgspec.json.Encoder().encode
_HEAVY_TOKENS = {"sessions": "sessions", "interactions": "sessions", "orders": "orders"}


@dataclass(frozen=True)
class JsResult:
    """Outcome of one JavaScript call: the JSON value returned, its JS truthiness, an error and the debug log."""

    value: Any
    error: str | None
    logs: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0
    truthy: bool = False


def needs_of_source(source: str) -> frozenset[str]:
    """Heavy guest parts a JS source may read, by a token scan for ``sessions``/``interactions``/``orders``."""
    return frozenset(part for token, part in _HEAVY_TOKENS.items() if token in source)


class _GcClock:
    """Cumulative time this process spent in Python's garbage collector.

    A collection stops every Python thread, including the event loop that watches a JS call's time limit,
    while V8 keeps running. Time limits are therefore measured net of GC pauses, so a long collection does
    not turn a 1 ms condition into a spurious timeout.
    """

    def __init__(self) -> None:
        self.total = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: Mapping[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self.total += time.perf_counter() - self._started
            self._started = 0.0


_GC_CLOCK = _GcClock()
gc.callbacks.append(_GC_CLOCK)


async def _call_with_limit(racer: MiniRacer, code: str, limit_s: float) -> Any:
    """Await a cancelable evaluation of ``code``; cancel it (V8 TerminateExecution) once it used ``limit_s``
    outside GC."""
    task = asyncio.ensure_future(racer.eval_cancelable(code))
    started, gc_started = time.perf_counter(), _GC_CLOCK.total
    while True:
        used = (time.perf_counter() - started) - (_GC_CLOCK.total - gc_started)
        if used >= limit_s:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            raise JSTimeoutException
        done, _pending = await asyncio.wait({task}, timeout=limit_s - used)
        if done:
            return task.result()


def _shutdown(stack: contextlib.ExitStack, loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    try:
        stack.close()  # frees the V8 context while the loop still runs, so late callbacks have somewhere to go
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()


class _Isolate:
    """One prepared V8 isolate with its own event-loop thread; used by exactly one calling thread."""

    def __init__(self, max_memory: int) -> None:
        self.loop = asyncio.new_event_loop()
        thread = threading.Thread(target=self.loop.run_forever, name="innkeeper-js-loop", daemon=True)
        thread.start()
        stack = contextlib.ExitStack()
        self._finalizer = weakref.finalize(self, _shutdown, stack, self.loop, thread)
        self.racer = stack.enter_context(mini_racer(self.loop))
        self.racer.set_hard_memory_limit(max_memory)
        self.racer.eval(_RUNTIME)
        self.calls = 0
        # The first call into a fresh isolate pays for lazy compilation and ICU time-zone data (tens of ms);
        # pay it here, outside any condition's time limit.
        self.run(_WARM_UP, '{"now": 0, "guest": {"sessions": [{"events": []}]}}', "{}", limit_s=_WARM_UP_TIMEOUT_S)

    def _call(self, function: str, args: tuple[str, ...], limit_s: float) -> Any:
        # One evaluation of `function("…", "…")`, the arguments as string literals: calling the function object
        # instead (mini-racer's call) builds its arguments array with a blocking trip to V8's thread per item.
        code = f"{function}({','.join(_literal(arg) for arg in args)})"
        return asyncio.run_coroutine_threadsafe(_call_with_limit(self.racer, code, limit_s), self.loop).result()

    def run(self, source: str, payload: str, params: str, *, limit_s: float) -> Any:
        return self._call("__ik_run", (source, payload, params), limit_s)

    def check(self, source: str, *, limit_s: float) -> Any:
        return self._call("__ik_check", (source,), limit_s)

    def close(self) -> None:
        # After a timeout the cancelled task still reports back through the event loop; a synchronous no-op
        # eval queued behind it makes sure that report has been delivered before the context is freed.
        with contextlib.suppress(JSEvalException):
            self.racer.eval("0")
        self._finalizer()


class JsSandbox:
    """Runs custom condition JavaScript under the §6.5 contract; safe to share between threads."""

    def __init__(self, *, timeout_ms: int = 50, total_ms: int = 200, max_memory: int = 32 * 1024 * 1024) -> None:
        self.timeout_ms = timeout_ms
        self.total_ms = total_ms
        self.max_memory = max_memory
        self._local = threading.local()

    # -- isolate management -------------------------------------------------------------------------------

    def _isolate(self) -> _Isolate:
        isolate: _Isolate | None = getattr(self._local, "isolate", None)
        if isolate is None or isolate.calls >= RECYCLE_AFTER_CALLS:
            if isolate is not None:
                isolate.close()
            isolate = _Isolate(self.max_memory)
            self._local.isolate = isolate
        isolate.calls += 1
        return isolate

    def _discard(self) -> None:
        isolate: _Isolate | None = getattr(self._local, "isolate", None)
        self._local.isolate = None
        if isolate is not None:
            isolate.close()

    # -- public API -----------------------------------------------------------------------------------------

    def check_syntax(self, source: str) -> None:
        """Parse ``source`` in the engine without running it; raise ConditionError with the engine's message."""
        _check_size(source)
        try:
            message = self._isolate().check(source, limit_s=max(self.timeout_ms, 1000) / 1000)
        except (JSTimeoutException, JSOOMException) as exc:
            self._discard()
            raise ConditionError("the condition source could not be parsed within the sandbox limits") from exc
        if message is not None:
            raise ConditionError(f"invalid condition JavaScript: {message}")

    def run(
        self,
        source: str,
        ctx: ConditionContext,
        *,
        params: Mapping[str, Any] | None = None,
        timeout_ms: float | None = None,
    ) -> JsResult:
        """Run one condition source against ``ctx``; errors (throw, timeout, OOM, Promise) come back in the result."""
        payload = build_payload(ctx, needs_of_source(source))
        return self.run_payload(source, payload, params=params, timeout_ms=timeout_ms)

    def run_payload(
        self,
        source: str,
        payload: str,
        *,
        params: Mapping[str, Any] | None = None,
        timeout_ms: float | None = None,
    ) -> JsResult:
        """Run ``source`` with an already-serialised payload (see ``build_payload``), so calls can share one.

        ``timeout_ms`` is what is left of the caller's total budget; the per-call limit is the smaller of it and
        the sandbox's ``timeout_ms``. A call that times out is retried once on a fresh isolate when the budget
        allows: the interpreter can stall a finished call's result delivery (a garbage collection that runs
        mini-racer finalizers in V8's callback thread), and a condition must not turn false because of that.
        """
        budget = self.timeout_ms * 2 if timeout_ms is None else timeout_ms
        if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
            return JsResult(None, "the condition source exceeds 64 KiB")
        params_json = dumps(params or {})
        spent = 0.0
        for _attempt in range(2):
            limit = min(self.timeout_ms, budget - spent)
            if limit <= 0:
                break
            isolate = self._isolate()  # creating one is not charged to the condition's time
            started = time.perf_counter()
            try:
                raw = isolate.run(source, payload, params_json, limit_s=limit / 1000)
            except JSTimeoutException:
                self._discard()
                spent += _ms(started)
                continue
            except JSEvalException as exc:
                if isinstance(exc, JSOOMException) or isolate.racer.was_hard_memory_limit_reached():
                    self._discard()
                    return JsResult(None, "the condition exceeded its memory limit", [], spent + _ms(started))
                # Only the runtime itself can fail here (e.g. a malformed payload); user errors are caught in JS.
                logger.warning("condition runtime failure: %s", type(exc).__name__)
                self._discard()
                return JsResult(None, "the condition runtime failed", [], spent + _ms(started))
            elapsed = spent + _ms(started)
            if not isinstance(raw, str):
                return JsResult(None, "the condition runtime returned an unexpected value", [], elapsed)
            decoded = json.loads(raw)
            logs = [str(line) for line in decoded["l"]]
            return JsResult(decoded["v"], decoded["e"], logs, elapsed, bool(decoded["t"]))
        if spent == 0:
            return JsResult(None, "the JavaScript time budget of this execution is exhausted")
        return JsResult(None, f"the condition exceeded its time limit ({self.timeout_ms:g} ms)", [], spent)


def build_payload(ctx: ConditionContext, needs: frozenset[str]) -> str:
    """Serialise the §6.3 globals for one call; ``guest.sessions``/``orders`` only when ``needs`` says so.

    Timestamps are left as msgspec writes them: the isolate normalises them to ``…SS.mmmZ`` before parsing.
    """
    now = to_millis(ctx.now)
    return encode(
        {
            "now": now,
            "guest": guest_for_js(ctx.guest, needs),
            "request": ctx.request,
            "session": without_alias(ctx.session),
            "event": ctx.event,
            "flow": ctx.flow,
            "tenant": {"timezone": ctx.timezone},
        }
    )


def _literal(text: str) -> str:
    """A JavaScript string literal of ``text`` (JSON's string syntax is a subset of JavaScript's)."""
    return _STRING(text).decode("utf-8")


def _check_size(source: str) -> None:
    if len(source.encode("utf-8")) > MAX_SOURCE_BYTES:
        raise ConditionError("the condition source exceeds 64 KiB")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
