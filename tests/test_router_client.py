"""The hot-path HTTP client against small servers of the test's own on loopback."""
from __future__ import annotations

import asyncio

import pytest

import httptools

from emulator.router import client
from emulator.router.client import ConnectionLost, ConnectionPool, head_of


async def serve(handler):
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def read_request(reader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    return await reader.readexactly(length)


def run(coroutine):
    return asyncio.run(coroutine)


def test_keep_alive_reuses_one_connection_and_parses_chunked_bodies():
    async def main():
        connections = 0

        async def handler(reader, writer):
            nonlocal connections
            connections += 1
            while True:
                try:
                    body = await read_request(reader)
                except asyncio.IncompleteReadError:
                    break
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                             + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
                await writer.drain()
            writer.close()

        server, port = await serve(handler)
        pool = ConnectionPool()
        answers = [await pool.post("127.0.0.1", port, "/invocations", f"body {i}".encode(), {"X-A": "1"}, 5) for i in range(3)]
        pool.close()
        server.close()
        return connections, answers

    connections, answers = run(main())
    assert connections == 1
    assert [a[2] for a in answers] == [b"body 0", b"body 1", b"body 2"]
    assert answers[0][0] == 200 and (b"Content-Type", b"text/plain") in answers[0][1]


def test_connection_close_answers_and_large_bodies():
    async def main():
        async def handler(reader, writer):
            body = await read_request(reader)
            writer.write(b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
            writer.close()

        server, port = await serve(handler)
        pool = ConnectionPool()
        big = bytes(range(256)) * 4096  # 1 MiB, written in two parts
        first = await pool.post("127.0.0.1", port, "/invocations", big, {}, 5)
        second = await pool.post("127.0.0.1", port, "/invocations", b"again", {}, 5)
        pool.close()
        server.close()
        return first, second

    first, second = run(main())
    assert first[0] == 201 and first[2] == bytes(range(256)) * 4096
    assert second[2] == b"again"


def test_timeout_and_a_server_that_hangs_up():
    async def main():
        async def silent(reader, writer):
            await read_request(reader)
            await asyncio.sleep(5)

        async def rude(reader, writer):
            await read_request(reader)
            writer.close()

        silent_server, silent_port = await serve(silent)
        rude_server, rude_port = await serve(rude)
        pool = ConnectionPool()
        with pytest.raises(asyncio.TimeoutError):
            await pool.post("127.0.0.1", silent_port, "/invocations", b"x", {}, 0.2)
        with pytest.raises(ConnectionLost):
            await pool.post("127.0.0.1", rude_port, "/invocations", b"x", {}, 5)
        pool.close()
        silent_server.close()
        rude_server.close()

    run(main())


def test_start_answers_from_the_connections_callback_and_names_each_failure():
    """``start`` sends on an idle connection only, and hands on an answer, a timeout, a hang-up before any byte,
    one after some bytes, and an answer that is not HTTP, each as itself."""
    async def main():
        behaviour = ["answer"]

        async def handler(reader, writer):
            while True:
                try:
                    body = await read_request(reader)
                except asyncio.IncompleteReadError:
                    break
                how = behaviour[0]
                if how == "answer":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                elif how == "silent":
                    await asyncio.sleep(5)
                elif how == "garbage":
                    writer.write(b"this is not HTTP\r\n\r\n")
                elif how == "half":
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
                if how != "answer":
                    await writer.drain()
                    writer.close()
                    break
                await writer.drain()

        server, port = await serve(handler)
        pool = ConnectionPool()
        key = ("127.0.0.1", port)
        outcomes = []

        async def started(how: str, timeout: float = 5):
            behaviour[0] = "answer"
            await pool.post("127.0.0.1", port, "/invocations", b"warm", {}, 5)  # one connection, idle
            behaviour[0] = how
            done = asyncio.Event()

            def on_answer(status, headers, answer):
                outcomes.append((how, status, answer))
                done.set()

            assert pool.start(key, head_of("POST", "127.0.0.1", port, "/invocations", 5, {}), b"hello", timeout,
                              on_answer)
            await asyncio.wait_for(done.wait(), 5)

        fresh = ConnectionPool()
        assert not fresh.start(key, b"", b"", 5, None)  # nothing idle: the caller takes the awaitable path
        for how in ("answer", "silent", "drop", "half", "garbage"):
            await started(how, 0.3 if how == "silent" else 5)
        await started("answer")  # a failed connection is not used again
        pool.close()
        server.close()
        return outcomes

    outcomes = run(main())
    by = {how: (status, answer) for how, status, answer in outcomes}
    assert by["answer"] == (200, b"hello")
    assert by["silent"][0] is None and isinstance(by["silent"][1], asyncio.TimeoutError)
    assert by["drop"][0] is None and isinstance(by["drop"][1], ConnectionLost) and not by["drop"][1].answered
    assert by["half"][0] is None and isinstance(by["half"][1], ConnectionLost) and by["half"][1].answered
    assert by["garbage"][0] is None and isinstance(by["garbage"][1], httptools.HttpParserError)
    assert len(outcomes) == 6 and outcomes[-1][1:] == (200, b"hello")


def test_an_answer_head_seen_before_is_taken_as_the_parser_would():
    """An answer whose head came before, with its whole body in the same packet, skips the parser; one with the
    same head whose body comes in two packets is still parsed, on both forms of the pool."""
    async def main():
        async def copy(reader, writer):
            while True:
                try:
                    body = await read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                head = b"HTTP/1.1 200 OK\r\nX-Kind: same\r\nContent-Length: %d\r\n\r\n" % len(body)
                if body.startswith(b"split"):  # the same head, its body a moment later
                    writer.write(head + body[:2])
                    await writer.drain()
                    await asyncio.sleep(0.05)
                    writer.write(body[2:])
                else:
                    writer.write(head + body)
                await writer.drain()

        copy_server, copy_port = await serve(copy)
        pool = ConnectionPool()
        answers = [await pool.post("127.0.0.1", copy_port, "/invocations", body, {}, 5)
                   for body in (b"abcde", b"fghij", b"split", b"klmno")]
        assert [a[2] for a in answers] == [b"abcde", b"fghij", b"split", b"klmno"]
        assert all(a[0] == 200 and list(a[1]) == [(b"X-Kind", b"same"), (b"Content-Length", b"5")] for a in answers)
        assert b"HTTP/1.1 200 OK\r\nX-Kind: same\r\nContent-Length: 5\r\n\r\n" in client._answer_heads
        done = asyncio.get_running_loop().create_future()
        assert pool.start(("127.0.0.1", copy_port), head_of("POST", "127.0.0.1", copy_port, "/invocations", 5, {}),
                          b"pqrst", 5, lambda *answer: done.set_result(answer))
        assert (await done)[2] == b"pqrst"
        done = asyncio.get_running_loop().create_future()
        assert pool.start(("127.0.0.1", copy_port), head_of("POST", "127.0.0.1", copy_port, "/invocations", 5, {}),
                          b"split", 5, lambda *answer: done.set_result(answer))
        assert (await done)[2] == b"split"
        pool.close()
        copy_server.close()

    run(main())
