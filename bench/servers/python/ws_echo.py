#!/usr/bin/env python3
"""WebSocket echo server on python3-websockets (asyncio). Part of bench/ (docs/performance.md).

Usage: ws_echo.py PORT
"""
import asyncio
import sys

import websockets


async def echo(ws, *_):
    try:
        async for msg in ws:
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main(port):
    # No compression (the others do none), no keep-alive pings during the run.
    async with websockets.serve(echo, "127.0.0.1", port, compression=None, ping_interval=None,
                                backlog=4096):
        await asyncio.Future()


asyncio.run(main(int(sys.argv[1])))
