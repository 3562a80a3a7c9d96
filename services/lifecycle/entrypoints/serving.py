"""An HTTP server inside a process whose signals and lifecycle belong to someone else."""

import asyncio
import contextlib
import socket
from collections.abc import Iterator

import uvicorn
from fastapi import FastAPI

from services.lifecycle.adapters.refusals import Refused


class EmbeddedServer(uvicorn.Server):
    """Uvicorn that leaves the process's signals to its host (FastStream, the scheduler)."""

    def __init__(
        self,
        app: FastAPI,
        host: str,
        port: int,
        grace_s: float = 10.0,
        port_setting: str = "the port",
    ) -> None:
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
        self._socket: socket.socket | None = None
        self._port_setting = port_setting

    def bind(self) -> socket.socket:
        """Take the port now (a taken port refuses the start, naming its setting), so
        that the rest of start-up does not happen for nothing."""
        if self._socket is not None:
            return self._socket
        config = self.config
        sock = socket.socket(socket.AF_INET6 if ":" in config.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((config.host, config.port))
        except OSError as error:
            sock.close()
            raise Refused(
                f"{self._port_setting}: cannot listen on {config.host}:{config.port} "
                f"({error.strerror}); give each process on this host its own port"
            ) from None
        self._socket = sock
        return sock

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def start(self) -> None:
        """Serve in the background; returns once listening, or raises why it could not."""
        listening = self.bind()
        self._task = asyncio.create_task(self.serve(sockets=[listening]), name="http")
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
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    @property
    def port(self) -> int | None:
        """The bound port (port 0 picks a free one)."""
        for server in self.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return None
