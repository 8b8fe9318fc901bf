"""The local host's run loop: HTTP server, queue pumps and timers over one indexed app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from local.host import host_json
from local.host.http_server import HttpHost
from local.host.indexing import IndexedApp
from local.host.invoker import Invoker
from local.host.keys import HostKeys
from local.host.queue_pump import QueuePump, QueueSource
from local.host.timers import Schedule, run_timer

log = logging.getLogger("local.host")


class _Server(uvicorn.Server):
    """Leaves signals to the caller, which stops the host by cancelling `serve`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class FunctionHost:
    app: IndexedApp
    keys: HostKeys
    options: host_json.HostOptions
    queue_source: QueueSource | None
    host: str = "127.0.0.1"
    port: int = 7071
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def from_files(
        cls,
        app: IndexedApp,
        keys: HostKeys,
        script_root: Path,
        queue_source: QueueSource | None,
        port: int,
    ) -> FunctionHost:
        options = host_json.load(script_root / "host.json")
        for timer in app.timers:
            Schedule(timer.schedule)  # an invalid schedule fails start-up, as in Azure
        if app.queues and queue_source is None:
            raise RuntimeError("the app has Service Bus triggers but no broker is configured")
        return cls(app=app, keys=keys, options=options, queue_source=queue_source, port=port)

    async def serve(self, started: asyncio.Event | None = None) -> None:
        invoker = Invoker()
        http = HttpHost(self.app.http, self.options.route_prefix, self.keys, invoker)
        config = uvicorn.Config(
            http,
            host=self.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        server = _Server(config)
        if self.queue_source is not None:
            for function in self.app.queues:
                pump = QueuePump(function, self.queue_source, invoker, self.options.service_bus)
                self._tasks.extend(pump.tasks())
        for timer in self.app.timers:
            self._tasks.append(asyncio.create_task(run_timer(timer, invoker)))
        for task in self._tasks:
            task.add_done_callback(_report_crash)
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                if serving.done():
                    await serving
                    raise RuntimeError(f"the HTTP server could not start on port {self.port}")
                await asyncio.sleep(0.01)
            if started is not None:
                started.set()
            await serving
        finally:
            server.should_exit = True
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(serving, timeout=6)
            invoker.close()


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a host task stopped: %r", task.exception(), exc_info=task.exception())
