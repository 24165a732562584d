#!/usr/bin/env python3
"""support/http_client.py: python3's http.client against socket.http.server (http_server_spec).

Usage: http_client.py PORT
Runs each check against the server on 127.0.0.1:PORT and prints "ok NAME" or "FAIL NAME: why"
for each. The server is the one of http_server_spec's peer: /hello, /echo (the body back),
/chunks (a chunked reply), /head. Every socket has a timeout, so the script always ends.
"""
import http.client
import socket
import sys

PORT = int(sys.argv[1])
TIMEOUT = 5


def check(name, fn):
    try:
        fn()
        print("ok", name, flush=True)
    except Exception as e:  # noqa: BLE001 - every failure is reported, none ends the run
        print("FAIL", name + ":", repr(e), flush=True)


def keepalive():
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    socks = set()
    for i in range(20):
        c.request("GET", "/hello?n=%d" % i)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, r.status
        assert body == b"hello %d\n" % i, body
        socks.add(id(c.sock))
    assert len(socks) == 1, "the connection was not kept alive"
    c.close()


def pipelining():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT)
    reqs = b"".join(b"GET /hello?n=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(10))
    s.sendall(reqs)
    f = s.makefile("rb")
    for i in range(10):
        status = f.readline()
        assert status.startswith(b"HTTP/1.1 200 "), status
        length = None
        while True:
            line = f.readline()
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        assert f.read(length) == b"hello %d\n" % i
    f.close()
    s.close()


def chunked_upload():
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    parts = [b"a" * 1000, b"b" * 70000, b"", b"c"]
    c.request("POST", "/echo", body=iter([p for p in parts if p]), encode_chunked=True,
              headers={"Transfer-Encoding": "chunked"})
    r = c.getresponse()
    assert r.status == 200, r.status
    assert r.read() == b"".join(parts)
    c.close()


def chunked_download():
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    c.request("GET", "/chunks")
    r = c.getresponse()
    assert r.getheader("Transfer-Encoding") == "chunked"
    assert r.read() == b"".join(b"chunk %d\n" % i for i in range(100))
    c.close()


def expect_continue():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT)
    s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    got = s.recv(100)
    assert got.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), got
    s.sendall(b"hello")
    data = b""
    while not data.endswith(b"hello"):
        more = s.recv(1000)
        assert more, data
        data += more
    assert data.startswith(b"HTTP/1.1 200 OK"), data
    s.close()


def expect_continue_refused():
    # The handler answers without reading the body: no 100 is sent, and the connection closes.
    s = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT)
    s.sendall(b"POST /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
              b"Expect: 100-continue\r\n\r\n")
    data = b""
    while True:
        more = s.recv(1000)
        if not more:
            break
        data += more
    assert data.startswith(b"HTTP/1.1 200 OK"), data
    assert b"100 Continue" not in data
    assert b"Connection: close" in data
    s.close()


def head():
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=TIMEOUT)
    c.request("HEAD", "/hello?n=7")
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Length") == "8", r.getheader("Content-Length")
    assert r.read() == b""
    c.request("GET", "/hello?n=8")  # the connection is still in step
    r = c.getresponse()
    assert r.read() == b"hello 8\n"
    c.close()


def http10():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=TIMEOUT)
    s.sendall(b"GET /chunks HTTP/1.0\r\n\r\n")
    data = b""
    while True:
        more = s.recv(65536)
        if not more:
            break
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower(), head
    assert body == b"".join(b"chunk %d\n" % i for i in range(100))
    s.close()


for name, fn in [("keepalive", keepalive), ("pipelining", pipelining),
                 ("chunked_upload", chunked_upload), ("chunked_download", chunked_download),
                 ("expect_continue", expect_continue),
                 ("expect_continue_refused", expect_continue_refused), ("head", head),
                 ("http10", http10)]:
    check(name, fn)
