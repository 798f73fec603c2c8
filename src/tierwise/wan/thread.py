"""Run a `WanProxy` on its own event loop in a background thread, for synchronous callers."""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType

from tierwise.wan.proxy import ProxyStats, WanProxy

START_TIMEOUT_S = 10.0


class ProxyThread:
    """A context manager: the proxy listens while the `with` block runs.

    >>> with ProxyThread(WanProxy(("127.0.0.1", 8000), WanConditions(rtt_p50_s=0.06))) as p:
    ...     httpx.get(p.url + "/healthz")
    """

    def __init__(self, proxy: WanProxy) -> None:
        self.proxy = proxy
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="wan-proxy", daemon=True)

    @property
    def url(self) -> str:
        return self.proxy.url

    @property
    def stats(self) -> ProxyStats:
        return self.proxy.stats

    def set_down(self, down: bool) -> None:
        """Start or end an outage (thread-safe)."""
        self._loop.call_soon_threadsafe(self.proxy.set_down, down)

    def __enter__(self) -> ProxyThread:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the WAN proxy did not start within 10 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self.proxy.close(), self._loop).result(5.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.proxy.start())
        except BaseException as exc:  # handed to the caller of __enter__
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()
