#!/usr/bin/env python3
"""tlspeer.py: TLS peers on loopback for the TLS specs, slow and misbehaving ones among them.

    python3 tlspeer.py CERTDIR

Serves, each on its own free port of 127.0.0.1, and prints "ports NAME=PORT ..." once all
listen:
  slow      TLS (CERTDIR/server.pem), answers any HTTP request after 0.5 s: 200 "hello"
  stall     accepts TCP and never says anything (a handshake that never completes)
  reset     TLS; reads a request, sends half a response and resets the connection
  garbage   plain text where a TLS server hello should be
  truncate  TLS; announces 1000 bytes of body, sends 100 and closes without close_notify
  connect   an HTTP CONNECT proxy (plain), tunnelling to any loopback port
  echo      TLS echo of every byte
"""
import asyncio
import os
import signal
import socket
import ssl
import struct
import sys

CERTS = sys.argv[1]


def tls_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(CERTS, "server.pem"), os.path.join(CERTS, "server.key"))
    return ctx


async def read_head(reader):
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = await reader.read(4096)
        if not chunk:
            return None
        head += chunk
    return head


def hard_close(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # An RST instead of a FIN.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def slow(reader, writer):
    try:
        while True:
            head = await read_head(reader)
            if head is None:
                break
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            await asyncio.sleep(0.5)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
            await writer.drain()
            break
    except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
        pass
    writer.close()


async def stall(reader, writer):
    try:
        while await reader.read(4096):
            pass
    except ConnectionError:
        pass
    writer.close()


async def reset(reader, writer):
    try:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        await writer.drain()
        await asyncio.sleep(0.1)
    except (ConnectionError, ssl.SSLError):
        pass
    hard_close(writer)


async def garbage(reader, writer):
    writer.write(b"HTTP/1.0 400 This is not TLS\r\n\r\n" * 20)
    try:
        await writer.drain()
        await reader.read(4096)
    except ConnectionError:
        pass
    writer.close()


async def truncate(reader, writer):
    try:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"y" * 100)
        await writer.drain()
        await asyncio.sleep(0.1)
    except (ConnectionError, ssl.SSLError):
        pass
    # Without close_notify: the TCP connection just ends.
    writer.transport.abort()


async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    try:
        writer.close()
    except Exception:
        pass


async def connect(reader, writer):
    head = await read_head(reader)
    if head is None:
        writer.close()
        return
    first = head.split(b"\r\n", 1)[0].decode()
    method, authority, _ = first.split(" ", 2)
    host, _, port = authority.rpartition(":")
    if method != "CONNECT" or host not in ("127.0.0.1", "localhost"):
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    try:
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
    except OSError:
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    auth = b"yes" if b"\r\nproxy-authorization:" in head.lower() else b"no"
    writer.write(b"HTTP/1.1 200 Connection established\r\nX-Proxy-Auth: " + auth + b"\r\n\r\n")
    await writer.drain()
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def echo(reader, writer):
    await pipe(reader, writer)


async def main():
    roles = {
        "slow": (slow, True),
        "stall": (stall, False),
        "reset": (reset, True),
        "garbage": (garbage, False),
        "truncate": (truncate, True),
        "connect": (connect, False),
        "echo": (echo, True),
    }
    ports = []
    servers = []
    for name, (handler, secure) in roles.items():
        srv = await asyncio.start_server(handler, "127.0.0.1", 0, backlog=1024,
                                         ssl=tls_context() if secure else None)
        servers.append(srv)
        ports.append("%s=%d" % (name, srv.sockets[0].getsockname()[1]))
    print("ports " + " ".join(ports), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
