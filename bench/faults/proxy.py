"""A TCP proxy that can hang: a partition as the daemon sees it, not a restart.

While hung, nothing is forwarded in either direction and nothing is closed: connections stay
open, bytes wait in the proxy, new connections are accepted and then left waiting, as when a
switch between two hosts drops every packet. ``heal`` forwards again; what waited is dropped
(as packets dropped on the wire, not delivered late), and the connections that were open during
the hang are cut, as TCP gives up on a peer whose packets were lost for that long.
"""

from __future__ import annotations

import asyncio
import contextlib

from bench._support import free_port


class HangingProxy:
    """127.0.0.1:``port`` forwarding to ``target_host``:``target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._hung_writers: set[asyncio.StreamWriter] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()

    @property
    def hung(self) -> bool:
        return not self._flowing.is_set()

    def hang(self) -> None:
        """Stop forwarding; keep every connection open."""
        self._hung_writers = set(self._writers)
        self._flowing.clear()

    def heal(self) -> None:
        """Forward again; the connections that lived through the hang are reset."""
        for writer in self._hung_writers:
            transport = writer.transport
            with contextlib.suppress(Exception):
                transport.abort()
        self._hung_writers = set()
        self._flowing.set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            await self._flowing.wait()  # a connection made during a hang waits
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                return
            self._writers.add(up_writer)
            await asyncio.gather(
                self._pipe(reader, up_writer, {writer, up_writer}),
                self._pipe(up_reader, writer, {writer, up_writer}),
            )
            self._writers.discard(up_writer)
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _pipe(
        self,
        src: asyncio.StreamReader,
        dst: asyncio.StreamWriter,
        pair: set[asyncio.StreamWriter],
    ) -> None:
        try:
            while data := await src.read(65536):
                if not self._flowing.is_set():
                    await self._flowing.wait()
                    if pair & self._hung_writers or any(w.is_closing() for w in pair):
                        break
                    continue  # dropped on the wire
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()
