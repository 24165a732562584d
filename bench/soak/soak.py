#!/usr/bin/env python3
"""bench/soak/soak.py: the soak test of uvsocket (bench/soak/README.md). Not run in CI.

churn (default): starts bench/soak/server.lua (a task-mode echo server) in its own process and
keeps --conns connections (default 10,000) churning against it for --seconds (default 600):
each connects, sends --echoes lines (default 3) and reads their echoes, waiting a random
0..--gap seconds (default 2) before each next line, closes, pauses a random 0..--pause seconds
(default 0.5), and starts over; with the defaults about nine in ten slots hold an open
connection at any time. Every --every seconds (default 10) it asks the server for
its figures on a control connection and prints a row: RSS, open descriptors, live tasks,
watchers, timers, pooled receive bytes, connections the clients hold open, connections
served, errors seen by the clients.

limit: starts the server with `ulimit -n --limit` (default 20000) and opens --conns connections
(default 21,000, in two client processes, since each process is limited too) at once; every
connection then sends one line. Reports how many were echoed, how many failed and how (refused,
reset, timed out), and how long the slowest took: the ones past the limit must end with an
error within --timeout seconds, not hang.

Loopback only; the client spreads its source addresses over 127.0.0.2..127.0.0.N so that ports
do not run out. Everything is bounded in time: the server is killed at the end whatever happens.
"""
import argparse, os, random, resource, selectors, signal, socket, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def start_server(port, limit, lua, budget):
    env = dict(os.environ)
    build = os.path.join(ROOT, "build", "stage")
    env.setdefault("LUA_PATH", f"{build}/share/lua/5.4/?.lua;{build}/share/lua/5.4/?/init.lua;;")
    env.setdefault("LUA_CPATH", f"{build}/lib/lua/5.4/?.so;;")
    cmd = ["sh", "-c", f"ulimit -n {limit}; exec timeout {int(budget)} {lua} {HERE}/server.lua {port}"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, text=True)
    line = p.stdout.readline()
    if not line.startswith("ready"):
        p.kill()
        sys.exit("server did not start: " + line)
    return p, int(line.split()[1])


def stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"STATS\n")
        buf = b""
        while not buf.endswith(b"\n"):
            d = c.recv(4096)
            if not d:
                break
            buf += d
    return dict(kv.split("=") for kv in buf.decode().split())


def proc_stats(pid):
    """The server's RSS and open descriptors read from /proc: at the descriptor limit it cannot
    accept a control connection."""
    kids = open(f"/proc/{pid}/task/{pid}/children").read().split()
    lua = int(kids[0]) if kids else pid  # the interpreter under `timeout`
    rss = next(l.split()[1] for l in open(f"/proc/{lua}/status") if l.startswith("VmRSS:"))
    return {"rss_kb": rss, "fds": len(os.listdir(f"/proc/{lua}/fd"))}


class Slot:
    __slots__ = ("sock", "left", "buf", "wake", "src", "due")


def churn(args):
    server, port = start_server(args.port, args.limit, args.lua, args.seconds + 120)
    sel = selectors.DefaultSelector()
    slots = []
    nsrc = 32  # a closed connection holds its port for a minute (TIME_WAIT)
    now = time.monotonic()
    for i in range(args.conns):
        s = Slot()
        s.sock, s.left, s.buf, s.due = None, 0, b"", None
        s.wake = now + random.random() * args.ramp
        s.src = "127.0.0.%d" % (2 + i % nsrc)
        slots.append(s)
    served = errors = opened = 0
    err_kinds = {}
    start = time.monotonic()
    end = start + args.seconds
    next_sample = start
    rows = []
    header = ("t_s", "rss_kb", "fds", "tasks", "watchers", "timers", "pooled", "active",
              "accepted", "refused", "lua_kb", "trims", "trim_ms", "client_open", "conns_done", "client_errors")
    print(" ".join("%10s" % h for h in header), flush=True)
    line = b"x" * 40 + b"\n"

    def fail(s, why):
        nonlocal errors
        errors += 1
        err_kinds[why] = err_kinds.get(why, 0) + 1
        close(s)

    def close(s):
        if s.sock is not None:
            try:
                sel.unregister(s.sock)
            except Exception:
                pass
            s.sock.close()
            s.sock = None
        s.due = None
        s.wake = time.monotonic() + random.random() * args.pause

    while True:
        now = time.monotonic()
        if now >= next_sample:
            st = stats(port)
            row = (round(now - start), st["rss_kb"], st["fds"], st["tasks"], st["watchers"],
                   st["timers"], st["pooled"], st["active"], st["accepted"], st["refused"],
                   st["lua_kb"], st["trims"], st["trim_ms"], opened, served, errors)
            rows.append(row)
            print(" ".join("%10s" % v for v in row), flush=True)
            next_sample += args.every
            if now >= end:
                break
        draining = now >= end - args.every / 2
        opened = 0
        for s in slots:
            if s.due is not None and s.due <= now:
                s.due = None
                try:
                    s.sock.send(line)
                except OSError as e:
                    fail(s, e.strerror or e.__class__.__name__)
                continue
            if s.sock is not None:
                opened += 1
            if s.sock is None and not draining and s.wake <= now:
                c = socket.socket()
                c.setblocking(False)
                try:
                    c.bind((s.src, 0))
                    c.connect_ex(("127.0.0.1", port))
                except OSError as e:
                    c.close()
                    fail(s, e.__class__.__name__)
                    continue
                s.sock, s.left, s.buf = c, args.echoes, b""
                sel.register(c, selectors.EVENT_WRITE, s)
        for key, ev in sel.select(timeout=0.05):
            s = key.data
            try:
                if ev & selectors.EVENT_WRITE:
                    err = s.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        fail(s, os.strerror(err))
                        continue
                    s.sock.send(line)
                    sel.modify(s.sock, selectors.EVENT_READ, s)
                else:
                    d = s.sock.recv(4096)
                    if not d:
                        fail(s, "closed")
                        continue
                    s.buf += d
                    if s.buf.endswith(b"\n"):
                        s.left -= 1
                        s.buf = b""
                        if s.left == 0:
                            served += 1
                            close(s)
                        elif args.gap > 0:
                            s.due = now + random.random() * args.gap
                        else:
                            s.sock.send(line)
            except OSError as e:
                fail(s, e.strerror or e.__class__.__name__)
    for s in slots:
        close(s)
    time.sleep(1)
    final = stats(port)
    print("after every client closed:", " ".join(f"{k}={v}" for k, v in final.items()))
    print(f"connections served {served}, client errors {errors} {err_kinds}")
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
    return 0 if errors == 0 else 1


def limit_client(port, n, first_src, timeout):
    """Child: opens n connections at once, then one echo on each. Prints a summary line."""
    socks = []
    t0 = time.monotonic()
    kinds = {}
    for i in range(n):
        c = socket.socket()
        c.setblocking(False)
        c.bind(("127.0.0.%d" % (first_src + i % 8), 0))
        c.connect_ex(("127.0.0.1", port))
        socks.append(c)
    sel = selectors.DefaultSelector()
    state = {}
    for c in socks:
        sel.register(c, selectors.EVENT_WRITE)
        state[c] = "connecting"
    ok = 0
    slowest = 0.0
    slowest_error = 0.0
    deadline = t0 + timeout
    while state and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=0.5):
            c = key.fileobj
            try:
                if state[c] == "connecting":
                    err = c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, os.strerror(err))
                    c.send(b"hello\n")
                    state[c] = "waiting"
                    sel.modify(c, selectors.EVENT_READ)
                else:
                    d = c.recv(100)
                    if d == b"hello\n":
                        ok += 1
                        slowest = max(slowest, time.monotonic() - t0)
                        kinds["echoed"] = kinds.get("echoed", 0) + 1
                    else:
                        k = "closed" if not d else "garbled"
                        kinds[k] = kinds.get(k, 0) + 1
                        slowest_error = max(slowest_error, time.monotonic() - t0)
                    sel.unregister(c)
                    del state[c]
            except OSError as e:
                k = e.strerror or str(e)
                kinds[k] = kinds.get(k, 0) + 1
                slowest_error = max(slowest_error, time.monotonic() - t0)
                sel.unregister(c)
                del state[c]
    for c, st in state.items():
        kinds["no answer after %ds (%s)" % (timeout, st)] = \
            kinds.get("no answer after %ds (%s)" % (timeout, st), 0) + 1
    print(repr({"n": n, "kinds": kinds, "slowest_echo_s": round(slowest, 2),
                "slowest_refusal_s": round(slowest_error, 2)}), flush=True)
    # Hold every connection to the end of the window, so that a connection past the limit can
    # only be refused, never served on a descriptor another one freed.
    time.sleep(max(0.0, deadline - time.monotonic()) + 2)


def limit(args):
    server, port = start_server(args.port, args.limit, args.lua, args.seconds + 120)
    half = args.conns // 2
    kids = []
    for k in range(2):
        kids.append(subprocess.Popen(
            [sys.executable, __file__, "--child", str(port), str(half), str(2 + 8 * k),
             str(args.timeout)], stdout=subprocess.PIPE, text=True))
    time.sleep(args.timeout / 2)
    st = proc_stats(server.pid)
    print("server while the clients hold their connections:",
          " ".join(f"{k}={v}" for k, v in st.items()))
    total = {}
    for p in kids:
        out, _ = p.communicate(timeout=args.timeout + 60)
        d = eval(out.strip().splitlines()[-1])
        print("client process:", d)
        for k, v in d["kinds"].items():
            total[k] = total.get(k, 0) + v
    time.sleep(1)
    st = stats(port)
    print("server after the clients closed:", " ".join(f"{k}={v}" for k, v in st.items()))
    print("all connections:", total)
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
    stalled = sum(v for k, v in total.items() if k.startswith("no answer"))
    return 0 if stalled == 0 else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        port, n, src, timeout = map(int, sys.argv[2:6])
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        limit_client(port, n, src, timeout)
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="churn", choices=("churn", "limit"))
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--conns", type=int, default=None)
    ap.add_argument("--echoes", type=int, default=3)
    ap.add_argument("--pause", type=float, default=0.5)
    ap.add_argument("--gap", type=float, default=2.0)
    ap.add_argument("--ramp", type=float, default=10.0)
    ap.add_argument("--every", type=float, default=10)
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--timeout", type=int, default=30)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--lua", default="lua5.4")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.mode == "churn":
        args.conns = args.conns or 10000
        return churn(args)
    args.conns = args.conns or 21000
    return limit(args)


if __name__ == "__main__":
    sys.exit(main())
