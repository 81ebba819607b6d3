"""Reach a container that has no network (EnableNetworkIsolation) through host loopback.

The listening socket is made on 127.0.0.1 in the host's network namespace; then this process
enters the container's namespace (setns), so each connection it opens to 127.0.0.1:8080 lands
inside the container, whose only interface is its own loopback. Runs as root, dies with smemu.

    python -m emulator.runtime.netns_proxy --pid CONTAINER_PID --listen-port N [--target-port 8080]
"""
from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import signal
import socket

CLONE_NEWNET = 0x40000000


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def serve(listener: socket.socket, target_port: int):
    async def handle(client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, sock=listener)
    async with server:
        await server.serve_forever()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--listen-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, default=8080)
    args = parser.parse_args()
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: go with the emulator
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", args.listen_port))
    listener.listen(128)
    fd = os.open(f"/proc/{args.pid}/ns/net", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise SystemExit(f"setns failed: {os.strerror(ctypes.get_errno())}")
    os.close(fd)
    asyncio.run(serve(listener, args.target_port))


if __name__ == "__main__":
    main()
