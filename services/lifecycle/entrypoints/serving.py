"""An HTTP server inside a process whose signals and lifecycle belong to someone else."""

import asyncio
import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI


class EmbeddedServer(uvicorn.Server):
    """Uvicorn that leaves the process's signals to its host (FastStream, the scheduler)."""

    def __init__(self, app: FastAPI, host: str, port: int, grace_s: float = 10.0) -> None:
        super().__init__(
            uvicorn.Config(
                app,
                host=host,
                port=port,
                log_config=None,  # the service's JSON logging stays in charge
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=max(1, int(grace_s)),
            )
        )
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def start(self) -> None:
        """Serve in the background; returns once listening, or raises why it could not."""
        self._task = asyncio.create_task(self.serve(), name="http")
        while not self.started:
            if self._task.done():
                await self._task
                raise RuntimeError("the HTTP server stopped at start-up")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop accepting, answer the requests in flight, then return."""
        if self._task is not None:
            self.should_exit = True
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    @property
    def port(self) -> int | None:
        """The bound port (port 0 picks a free one)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None
