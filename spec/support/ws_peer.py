#!/usr/bin/env python3
"""support/ws_peer.py: python3-websockets as the peer of websocket_spec.

Usage:
  ws_peer.py server          an echo server on 127.0.0.1 (port chosen by the system, printed as
                             "port N pid P"); it answers pings itself and echoes every message
  ws_peer.py client URL      connects to URL (a uvsocket echo server), sends text, binary,
                             a fragmented and a large message, pings, checks the echoes and
                             closes with code 4000; prints "ok NAME" / "FAIL NAME: why"
Every wait has a timeout; the server ends by itself after 60 s.
"""
import asyncio
import os
import sys

import websockets


async def echo(ws, *_):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def server():
    async with websockets.serve(echo, "127.0.0.1", 0, max_size=2 ** 24) as srv:
        port = srv.sockets[0].getsockname()[1]
        print("port", port, "pid", os.getpid(), flush=True)
        await asyncio.sleep(60)


async def client(url):
    results = []

    async def check(name, coro):
        try:
            await asyncio.wait_for(coro, 10)
            results.append("ok " + name)
        except Exception as e:  # noqa: BLE001
            results.append("FAIL %s: %r" % (name, e))

    async with websockets.connect(url, max_size=2 ** 24) as ws:
        async def text():
            await ws.send("héllo")
            assert await ws.recv() == "héllo"

        async def binary():
            await ws.send(b"\x00\xff" * 10)
            assert await ws.recv() == b"\x00\xff" * 10

        async def fragmented():
            await ws.send(iter(["frag", "ment", "ed"]))
            assert await ws.recv() == "fragmented"

        async def large():
            data = b"x" * 300000
            await ws.send(data)
            assert await ws.recv() == data

        async def ping():
            pong = await ws.ping(b"abc")
            await pong

        async def many():
            for i in range(200):
                await ws.send("m%d" % i)
            for i in range(200):
                assert await ws.recv() == "m%d" % i

        for name, fn in [("text", text), ("binary", binary), ("fragmented", fragmented),
                         ("large", large), ("ping", ping), ("many", many)]:
            await check(name, fn())
        await ws.close(4000, "done")
        results.append("ok close" if ws.close_code == 4000 else "FAIL close: %r" % ws.close_code)
    for r in results:
        print(r, flush=True)


if sys.argv[1] == "server":
    asyncio.run(server())
else:
    asyncio.run(client(sys.argv[2]))
