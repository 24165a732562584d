#!/usr/bin/env python3
"""bench/driver.py: runs uvsocket's benchmark scenarios and writes the report (issue 6).

Started by bench/run, which installs the packages and builds build-bench/ first. For every
scenario and repetition it starts each server on a free loopback port, runs the load
generator (bench/loadgen, or wrk for HTTP) against it, stops it, and keeps one record per
run. Servers are rotated within each repetition, so that no server always runs first. The
report gives medians over the repetitions and, for each server, the median of its
per-repetition ratios to the C libuv server measured in the same repetition: machine noise
moves both sides of a ratio together, so ratios are steadier than raw numbers.

Every process it starts runs in its own process group and is stopped (SIGTERM, then SIGKILL)
when its run ends, when the driver is interrupted, and at exit; every run has a time limit.
Only the Python standard library is used.
"""

import argparse
import atexit
import datetime
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

# ------------------------------------------------------------------------------------------------
# Configuration

SERVER_ORDER = ["c", "uvsocket", "uvsocket-base", "uvsocket-gen", "uvsocket-httpd",
                "uvsocket-httpd-base", "luv", "cqueues", "openresty", "python-ws"]
DEFAULT_SERVERS = ["c", "uvsocket", "uvsocket-httpd", "luv", "cqueues", "openresty",
                   "python-ws"]
LABELS = {
    "c": "C libuv",
    "uvsocket": "uvsocket",
    "uvsocket-base": "uvsocket (before)",
    "uvsocket-gen": "uvsocket (gen. GC)",
    "uvsocket-httpd": "uvsocket http.server",
    "uvsocket-httpd-base": "uvsocket http.server (before)",
    "luv": "luv",
    "cqueues": "cqueues",
    "openresty": "OpenResty (1 worker)",
    "python-ws": "python3-websockets",
}
# Servers that take part in some scenario groups only (the others take part in every group but
# "ws", which has a server of its own only for C, uvsocket and python3-websockets).
ONLY = {"uvsocket-httpd": {"http", "workers"}, "uvsocket-httpd-base": {"http"},
        "openresty": {"http"}, "python-ws": {"ws"}}
# The worker-process scenarios (serve{workers = N}) exist for uvsocket's two HTTP servers only.
WORKERS_SERVERS = {"uvsocket", "uvsocket-httpd"}
WS_SERVERS = {"c", "uvsocket", "python-ws"}
OPENRESTY_MODULE = "/usr/lib/nginx/modules/ngx_http_lua_module.so"


def supports(server, group):
    """Whether `server` has a program for the scenarios of `group`."""
    if server in ONLY:
        return group in ONLY[server]
    if group == "ws":
        return server in WS_SERVERS
    if group == "workers":
        return server in WORKERS_SERVERS
    return True

# Scenario groups, in report order. Each scenario: name, group, server program, mode.
SCENARIOS = [
    ("echo-1", "echo", "echo", {"conns": 1}),
    ("echo-100", "echo", "echo", {"conns": 100}),
    ("echo-1000", "echo", "echo", {"conns": 1000}),
    ("echo-10000", "echo", "echo", {"conns": 10000}),
    ("hold-10000", "hold", "echo", {"conns": 10000}),
    ("hold-silent", "hold", "echo", {"conns": 10000, "silent": True}),
    ("bulk-64k", "bulk", "block", {"conns": 1}),
    ("bulk-all", "bulk", "all", {"conns": 1}),
    ("http-100", "http", "http", {"conns": 100}),
    ("http-1000", "http", "http", {"conns": 1000}),
    ("ws-1000", "ws", "ws", {"conns": 1000}),
    ("workers-1", "workers", "http", {"conns": 100, "workers": 1}),
    ("workers-2", "workers", "http", {"conns": 100, "workers": 2}),
    ("accept", "accept", "echo", {"conns": 32}),
    ("stall-200m", "stall", "stall", {"conns": 1}),
    ("timers", "timers", "timers", {"tasks": 1000}),
]
SCENARIO_NAMES = [s[0] for s in SCENARIOS]

PROFILES = {
    # reps, warmup s, duration s, hold s, timer rounds
    "full": dict(reps=3, warmup=1.0, duration=4.0, hold=2.0, rounds=40),
    "quick": dict(reps=1, warmup=0.3, duration=1.0, hold=1.0, rounds=10),
}

LINE_SIZE = 64                # echo request size, newline included
BULK_TRANSFER = 16 << 20      # bytes per connection in the "*a" scenario
STALL_TRANSFER = 200 << 20    # bytes per transfer in the stall scenario (each way)
TIMER_LO_MS, TIMER_HI_MS = 10, 50


class Env:
    """Paths and programs."""

    def __init__(self, root, build, base_build=None):
        self.root = root
        self.build = build
        # uvsocket-base, uvsocket-httpd-base: the same servers on another build of uvsocket
        # (--base-build), so that a change is measured before and after in one run.
        base = os.path.join(base_build or build, "stage")
        self.base_lua_path = (f"{base}/share/lua/5.4/?.lua;{base}/share/lua/5.4/?/init.lua;;")
        self.base_lua_cpath = f"{base}/lib/lua/5.4/?.so;;"
        self.warmup = 1.0  # the profile's warm-up, for servers that measure something themselves
        self.bin = os.path.join(build, "bench")
        self.servers = os.path.join(root, "bench", "servers")
        stage = os.path.join(build, "stage")
        self.lua_path = (f"{stage}/share/lua/5.4/?.lua;{stage}/share/lua/5.4/?/init.lua;;")
        self.lua_cpath = f"{stage}/lib/lua/5.4/?.so;;"
        self.logs = os.path.join(build, "bench-logs")
        os.makedirs(self.logs, exist_ok=True)

    def loadgen(self):
        return os.path.join(self.bin, "loadgen")

    def server_command(self, server, mode, port, workers=None):
        """The command line and environment of `server` in `mode` (echo, block, all, http)."""
        env = dict(os.environ)
        for k in ("LUA_INIT", "LUA_INIT_5_4"):
            env.pop(k, None)
        if server == "c":
            cmode = {"echo": "echo", "block": "block", "all": "block", "http": "http",
                     "ws": "ws"}[mode]
            return [os.path.join(self.bin, "uvserver"), cmode, str(port)], env
        if server == "openresty":
            return self.openresty_command(port), env
        if server == "python-ws":
            return ["/usr/bin/python3", os.path.join(self.servers, "python", "ws_echo.py"),
                    str(port)], env
        if server in ("uvsocket-httpd", "uvsocket-httpd-base"):
            base = server == "uvsocket-httpd-base"
            env["LUA_PATH"] = self.base_lua_path if base else self.lua_path
            env["LUA_CPATH"] = self.base_lua_cpath if base else self.lua_cpath
            cmd = ["lua5.4", os.path.join(self.servers, "uvsocket", "http_server.lua"), str(port)]
            if workers is not None:
                cmd.append(str(workers))
            return cmd, env
        impl = "uvsocket" if server.startswith("uvsocket") else server
        if impl == "uvsocket":
            base = server == "uvsocket-base"
            env["LUA_PATH"] = self.base_lua_path if base else self.lua_path
            env["LUA_CPATH"] = self.base_lua_cpath if base else self.lua_cpath
        if server == "uvsocket-gen":
            env["LUA_INIT_5_4"] = 'collectgarbage("generational")'
        script = {"echo": "echo.lua", "block": "bulk.lua", "all": "bulk.lua", "http": "http.lua",
                  "stall": "bulk.lua", "ws": "ws_echo.lua"}
        cmd = ["lua5.4", os.path.join(self.servers, impl, script[mode]), str(port)]
        if mode in ("block", "all"):
            cmd.append(mode)
        if workers is not None:
            cmd.append(str(workers))
        if mode == "stall":
            # the bulk echo, with a ticker task that records the longest gap between its ticks
            cmd.append("block")
            env["BENCH_STALL_FILE"] = self.stall_file(server, port)
            env["BENCH_STALL_WARMUP"] = str(self.warmup)
        return cmd, env

    def stall_file(self, server, port):
        return os.path.join(self.logs, f"stall-{server}-{port}.txt")

    def openresty_command(self, port):
        """nginx with the Lua module, one worker, no master: a "hello" from content_by_lua."""
        d = os.path.join(self.logs, f"openresty-{port}")
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        conf = f"""{user}load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module {OPENRESTY_MODULE};
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 20000; }}
worker_rlimit_nofile 20000;
http {{
  access_log off;
  client_body_temp_path {d}/tmp;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    location / {{
      default_type text/plain;
      content_by_lua_block {{ ngx.print("Hello, World!") }}
    }}
  }}
}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        return ["nginx", "-p", d, "-e", os.path.join(d, "error.log"), "-c", path]

    def timers_command(self, server, tasks, rounds):
        env = dict(os.environ)
        for k in ("LUA_INIT", "LUA_INIT_5_4"):
            env.pop(k, None)
        args = [str(tasks), str(rounds), str(TIMER_LO_MS), str(TIMER_HI_MS)]
        if server == "c":
            return [os.path.join(self.bin, "uvtimers")] + args, env
        impl = "uvsocket" if server.startswith("uvsocket") else server
        if impl == "uvsocket":
            base = server == "uvsocket-base"
            env["LUA_PATH"] = self.base_lua_path if base else self.lua_path
            env["LUA_CPATH"] = self.base_lua_cpath if base else self.lua_cpath
        if server == "uvsocket-gen":
            env["LUA_INIT_5_4"] = 'collectgarbage("generational")'
        return ["lua5.4", os.path.join(self.servers, impl, "timers.lua")] + args, env


# ------------------------------------------------------------------------------------------------
# Processes: everything started here is tracked and stopped.

LIVE = {}  # pid -> Popen


def stop(proc, grace=3.0):
    """Stops a process started by spawn() and its process group; returns its exit status."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
    else:
        # The leader is gone; make sure nothing it started is left behind.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    LIVE.pop(proc.pid, None)
    return proc.returncode


def stop_all():
    for proc in list(LIVE.values()):
        stop(proc, grace=1.0)


def on_signal(signum, frame):
    stop_all()
    sys.stderr.write(f"bench: interrupted (signal {signum}), servers stopped\n")
    sys.exit(130)


def spawn(cmd, env, log_path, cpu=None):
    log = open(log_path, "wb")
    pre = None
    if cpu is not None:
        def pre():
            os.sched_setaffinity(0, {cpu})
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                            start_new_session=True, preexec_fn=pre)
    log.close()
    LIVE[proc.pid] = proc
    return proc


def run_bounded(cmd, timeout, env=None, cpu=None):
    """Runs a client program to completion within `timeout` seconds. Returns (rc, out, err)."""
    pre = None
    if cpu is not None:
        def pre():
            os.sched_setaffinity(0, {cpu})
    proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, preexec_fn=pre)
    LIVE[proc.pid] = proc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop(proc, grace=1.0)
        out, err = proc.communicate()
        return None, out.decode(errors="replace"), err.decode(errors="replace") + "\n(time limit)"
    LIVE.pop(proc.pid, None)
    return proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """True when something listens on 127.0.0.1:port (read from /proc, no probe connection)."""
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[1].endswith(want) and parts[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def proc_snapshot(pid):
    """CPU seconds of all threads, RSS/HWM in kB and context switches of process `pid`."""
    snap = {"cpu_s": 0.0, "ctxt": 0, "rss_kb": 0, "hwm_kb": 0}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    snap["rss_kb"] = int(line.split()[1])
                elif line.startswith("VmHWM:"):
                    snap["hwm_kb"] = int(line.split()[1])
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                snap["cpu_s"] += int(f.read().split()[0]) / 1e9
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt", "nonvoluntary_ctxt")):
                        snap["ctxt"] += int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return snap


def tree_snapshot(pid):
    """proc_snapshot summed over process `pid` and all its descendants (a supervisor and its
    worker processes): CPU seconds and RSS add up."""
    total = {"cpu_s": 0.0, "ctxt": 0, "rss_kb": 0, "hwm_kb": 0, "procs": 0}
    todo = [pid]
    while todo:
        p = todo.pop()
        snap = proc_snapshot(p)
        if snap is None:
            continue
        for k in ("cpu_s", "ctxt", "rss_kb", "hwm_kb"):
            total[k] += snap[k]
        total["procs"] += 1
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            pass
    return total if total["procs"] else None


def parse_kv(line):
    out = {}
    for item in line.split():
        if "=" in item:
            k, v = item.split("=", 1)
            try:
                out[k] = float(v)
            except ValueError:
                out[k] = v
    return out


# ------------------------------------------------------------------------------------------------
# One run


class Runner:
    def __init__(self, env, prof, args):
        self.env = env
        self.prof = prof
        self.args = args
        self.server_cpu = 1 if args.pin else None
        self.client_cpu = 0 if args.pin else None

    def start_server(self, server, mode, tag, workers=None):
        port = free_port()
        cmd, senv = self.env.server_command(server, mode, port, workers)
        log = os.path.join(self.env.logs, f"{tag}-{server}.log")
        # Worker processes are meant to spread over every CPU: never pinned to one.
        proc = spawn(cmd, senv, log, self.server_cpu if workers is None else None)
        deadline = time.monotonic() + 10.0
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise RuntimeError(f"{server} did not start: {tail(log)}")
            time.sleep(0.02)
        time.sleep(0.05)
        return proc, port, log

    def run(self, scenario, server, rep):
        name, group, mode, params = scenario
        tag = f"{name}-r{rep}"
        rec = {"scenario": name, "group": group, "server": server, "rep": rep}
        try:
            if group == "timers":
                rec.update(self.run_timers(server, params))
            elif group == "stall" and not server.startswith("uvsocket"):
                return None  # a uvsocket figure: the ticker is a task
            else:
                workers = params.get("workers") if group == "workers" else None
                proc, port, log = self.start_server(server, mode, tag, workers)
                try:
                    if workers is not None:
                        # wait until every worker has started (the supervisor's children)
                        deadline = time.monotonic() + 10.0
                        while (tree_snapshot(proc.pid) or {}).get("procs", 0) < workers + 1:
                            if time.monotonic() > deadline:
                                raise RuntimeError(f"{server}: workers did not start: "
                                                   f"{tail(log)}")
                            time.sleep(0.02)
                        rec["workers"] = workers
                    if group in ("http", "workers"):
                        rec.update(self.run_wrk(proc, port, params, tree=workers is not None))
                    else:
                        rec.update(self.run_loadgen(group, proc, port, params))
                    if group == "stall":
                        path = self.env.stall_file(server, port)
                        try:
                            with open(path) as f:
                                rec["gap_ms"] = float(f.read().split()[0])
                            os.remove(path)
                        except (OSError, ValueError, IndexError):
                            rec["error"] = "the server's ticker recorded no gap"
                    if proc.poll() is not None:
                        rec["error"] = f"server exited during the run: {tail(log)}"
                finally:
                    rc = stop(proc)
                    if rc not in (0, -signal.SIGTERM, 128 + signal.SIGTERM) and "error" not in rec:
                        rec["server_exit"] = rc
        except RuntimeError as e:
            rec["error"] = str(e)
        return rec

    def run_loadgen(self, group, proc, port, params):
        p = self.prof
        lg = [self.env.loadgen(), "-p", str(port), "-P", str(proc.pid), "-c", str(params["conns"])]
        if group == "echo":
            lg += ["-m", "echo", "-s", str(LINE_SIZE), "-w", str(p["warmup"]),
                   "-d", str(p["duration"])]
        elif group == "ws":
            lg += ["-m", "ws", "-s", str(LINE_SIZE), "-w", str(p["warmup"]),
                   "-d", str(p["duration"])]
        elif group == "hold":
            size = 0 if params.get("silent") else LINE_SIZE
            lg += ["-m", "hold", "-s", str(size), "-d", str(p["hold"])]
        elif group == "bulk":
            lg += ["-m", "bulk", "-w", str(p["warmup"]), "-d", str(p["duration"])]
            if params.get("all"):
                lg += ["-b", str(BULK_TRANSFER)]
        elif group == "stall":
            lg += ["-m", "bulk", "-b", str(STALL_TRANSFER), "-w", str(p["warmup"]),
                   "-d", str(p["duration"])]
        elif group == "accept":
            lg += ["-m", "accept", "-s", str(LINE_SIZE), "-w", str(p["warmup"]),
                   "-d", str(p["duration"])]
        limit = 2 * 20 + p["warmup"] + max(p["duration"], p["hold"]) + 15
        rc, out, err = run_bounded(lg, limit, cpu=self.client_cpu)
        lines = [l for l in out.splitlines() if l.startswith("mode=")]
        if rc != 0 or not lines:
            raise RuntimeError(f"loadgen failed (rc={rc}): {err.strip()[-300:]}")
        r = parse_kv(lines[-1])
        res = {"raw": r}
        if group in ("echo", "ws"):
            res.update(value=r["rps"], requests=r["requests"], p50=r["p50_ms"], p99=r["p99_ms"],
                       p999=r["p999_ms"], served=r["served"], established=r["established"],
                       conns=r["conns"])
        elif group == "accept":
            res.update(value=r["cps"], requests=r["connections"], p50=r["p50_ms"],
                       p99=r["p99_ms"], p999=r["p999_ms"], established=r["established"])
        elif group in ("bulk", "stall"):
            res.update(value=r["mbps"], requests=r["bytes"] / 1e6, transfers=r.get("transfers"),
                       bad=r["bad_replies"])
        elif group == "hold":
            res.update(value=r.get("bytes_per_conn", -1), verified=r["verified"],
                       conns=r["conns"], silent=bool(params.get("silent")),
                       rss_base_kb=r.get("rss_base_kb"),
                       rss_held_kb=r.get("rss_held_kb"), idle_cpu_s=r.get("srv_cpu_s"),
                       wakeups=r.get("srv_wakeups"))
        res["cpu_s"] = r.get("srv_cpu_s")
        res["rss_kb"] = r.get("srv_rss_kb")
        res["hwm_kb"] = r.get("srv_hwm_kb")
        res["loadgen_cpu_s"] = r.get("loadgen_cpu_s")
        errs = r["connect_errors"] + r["io_errors"] + r["peer_closed"] + r["bad_replies"]
        res["errors"] = errs
        return res

    def run_wrk(self, proc, port, params, tree=False):
        p = self.prof
        url = f"http://127.0.0.1:{port}/"
        conns = str(params["conns"])
        base = ["wrk", "-t1", "-c", conns, "--timeout", "5s"]
        warm = max(1, round(p["warmup"]))
        dur = max(1, round(p["duration"]))
        rc, out, err = run_bounded(base + ["-d", f"{warm}s", url], warm + 20, cpu=self.client_cpu)
        if rc != 0:
            raise RuntimeError(f"wrk warm-up failed: {err.strip()[-300:]}")
        snapshot = tree_snapshot if tree else proc_snapshot
        s0 = snapshot(proc.pid)
        rc, out, err = run_bounded(base + ["-d", f"{dur}s", "--latency", url], dur + 20,
                                   cpu=self.client_cpu)
        s1 = snapshot(proc.pid)
        if rc != 0:
            raise RuntimeError(f"wrk failed: {err.strip()[-300:]}")
        w = parse_wrk(out)
        res = {"value": w["rps"], "requests": w["requests"], "p50": w.get("p50"),
               "p99": w.get("p99"), "errors": w["errors"], "established": params["conns"]}
        if s0 and s1:
            res["cpu_s"] = s1["cpu_s"] - s0["cpu_s"]
            res["rss_kb"] = s1["rss_kb"]
            res["hwm_kb"] = s1["hwm_kb"]
        res["raw"] = w
        return res

    def run_timers(self, server, params):
        cmd, env = self.env.timers_command(server, params["tasks"], self.prof["rounds"])
        limit = self.prof["rounds"] * TIMER_HI_MS / 1000 * 2 + 30
        rc, out, err = run_bounded(cmd, limit, env=env, cpu=self.server_cpu)
        lines = [l for l in out.splitlines() if l.startswith("tasks=")]
        if rc != 0 or not lines:
            raise RuntimeError(f"timers failed (rc={rc}): {err.strip()[-300:]}")
        r = parse_kv(lines[-1])
        return {"value": r["late_p99_ms"], "p50": r["late_p50_ms"], "p99": r["late_p99_ms"],
                "max": r["late_max_ms"], "early": r["early"], "wakeups": r["wakeups"],
                "cpu_s": r["cpu_s"], "wall_s": r["wall_s"], "raw": r}


def tail(path, n=400):
    try:
        with open(path, "rb") as f:
            data = f.read()[-n:]
        return data.decode(errors="replace").strip().replace("\n", " | ")
    except OSError:
        return ""


WRK_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse_wrk(text):
    res = {"errors": 0}
    m = re.search(r"Requests/sec:\s*([\d.]+)", text)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in", text)
    res["requests"] = int(m.group(1)) if m else 0
    for pct, key in (("50", "p50"), ("99", "p99")):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        if m:
            res[key] = float(m.group(1)) * WRK_UNITS[m.group(2)]
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        res["errors"] += sum(int(x) for x in m.groups())
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        res["errors"] += int(m.group(1))
    return res


# ------------------------------------------------------------------------------------------------
# Statistics and the report


def med(values):
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def fmt(v, digits=0, none="–"):
    if v is None:
        return none
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def by_key(records):
    out = {}
    for r in records:
        out.setdefault((r["scenario"], r["server"]), []).append(r)
    return out


def ratio_median(records, scenario, server, field, ref="c", per_value=None, ref_scenario=None):
    """Median over repetitions of record[field] / ref-record[field] from the same repetition
    (the reference: server `ref` in the same scenario, or in `ref_scenario` when given)."""
    recs = [r for r in records if r["scenario"] == scenario and "error" not in r]
    refs = recs if ref_scenario is None else \
        [r for r in records if r["scenario"] == ref_scenario and "error" not in r]
    ref_by_rep = {r["rep"]: r for r in refs if r["server"] == ref}
    ratios = []
    for r in recs:
        if r["server"] != server or r["rep"] not in ref_by_rep:
            continue
        a = per_value(r) if per_value else r.get(field)
        b = per_value(ref_by_rep[r["rep"]]) if per_value else ref_by_rep[r["rep"]].get(field)
        if a is not None and b:
            ratios.append(a / b)
    return med(ratios)


def per_cpu(r):
    """Requests (or MB) per server CPU-second."""
    if r.get("cpu_s") and r.get("requests") is not None:
        return r["requests"] / r["cpu_s"]
    return None


def busy(r):
    """CPU time as a percentage of wall time (timers scenario)."""
    if r.get("cpu_s") is not None and r.get("wall_s"):
        return 100.0 * r["cpu_s"] / r["wall_s"]
    return None


def us_per_req(r):
    if r.get("cpu_s") and r.get("requests"):
        return r["cpu_s"] / r["requests"] * 1e6
    return None


class Report:
    def __init__(self, records, servers, meta):
        self.records = records
        self.servers = [s for s in SERVER_ORDER if s in servers]
        self.meta = meta
        self.ok = [r for r in records if "error" not in r]
        self.groups = by_key(self.ok)

    def runs(self, scenario, server):
        return self.groups.get((scenario, server), [])

    def mfield(self, scenario, server, field, fn=None):
        rs = self.runs(scenario, server)
        return med([fn(r) if fn else r.get(field) for r in rs])

    def scenarios_of(self, group):
        return [s[0] for s in SCENARIOS
                if s[1] == group and any(r["scenario"] == s[0] for r in self.records)]

    # -- tables --
    def table_throughput(self, group, unit, per_unit):
        rows = []
        head = (f"| scenario | server | median {unit} | ratio to C | p50 ms | p99 ms | "
                f"p99 vs C | served / conns | server CPU µs/{per_unit} | {per_unit}s per "
                f"CPU-s | vs C | RSS MB | per-repetition {unit} |")
        if group == "accept":
            head = head.replace("served / conns", "connections made")
        rows.append(head)
        rows.append("|" + "---|" * (head.count("|") - 1))
        for sc in self.scenarios_of(group):
            for sv in self.servers:
                if not supports(sv, group):
                    continue
                rs = self.runs(sc, sv)
                if not rs:
                    rows.append(f"| {sc} | {LABELS[sv]} | failed | | | | | | | | | | |")
                    continue
                v = self.mfield(sc, sv, "value")
                ratio = ratio_median(self.records, sc, sv, "value")
                p99r = ratio_median(self.records, sc, sv, "p99")
                cpur = ratio_median(self.records, sc, sv, None, per_value=per_cpu)
                if group == "accept":
                    served = fmt(min(r.get("established", 0) for r in rs))
                else:
                    served = (f"{min(r.get('served', r.get('established', 0)) for r in rs):.0f}/"
                              f"{max(r.get('established', 0) for r in rs):.0f}")
                    if group == "http":
                        errs = max(r.get("errors", 0) for r in rs)
                        served = f"{params_conns(sc)} ({errs:.0f} errors)" if errs else \
                            f"{params_conns(sc)}"
                per = " ".join(fmt(r["value"]) for r in sorted(rs, key=lambda r: r["rep"]))
                rss = self.mfield(sc, sv, "rss_kb")
                rows.append(
                    f"| {sc} | {LABELS[sv]} | {fmt(v)} | {fmt(ratio, 2)} | "
                    f"{fmt(self.mfield(sc, sv, 'p50'), 3)} | "
                    f"{fmt(self.mfield(sc, sv, 'p99'), 3)} | {fmt(p99r, 2)} | {served} | "
                    f"{fmt(self.mfield(sc, sv, None, us_per_req), 2)} | "
                    f"{fmt(self.mfield(sc, sv, None, per_cpu))} | {fmt(cpur, 2)} | "
                    f"{fmt(rss / 1024 if rss else None, 1)} | {per} |")
        return "\n".join(rows)

    def table_workers(self):
        rows = ["| server | workers | median requests/s | vs 1 worker | p99 ms | server CPU s "
                "(all processes) | requests per CPU-s | vs 1 worker | per-repetition "
                "requests/s |",
                "|---|---|---|---|---|---|---|---|---|"]
        for sv in self.servers:
            if sv not in WORKERS_SERVERS:
                continue
            for sc in self.scenarios_of("workers"):
                rs = self.runs(sc, sv)
                n = params_workers(sc)
                if not rs:
                    rows.append(f"| {LABELS[sv]} | {n} | failed | | | | | | |")
                    continue
                ratio = ratio_median(self.records, sc, sv, "value", ref=sv, ref_scenario="workers-1")
                cpur = ratio_median(self.records, sc, sv, None, ref=sv, per_value=per_cpu,
                                    ref_scenario="workers-1")
                per = " ".join(fmt(r["value"]) for r in sorted(rs, key=lambda r: r["rep"]))
                rows.append(f"| {LABELS[sv]} | {n} | {fmt(self.mfield(sc, sv, 'value'))} | "
                            f"{fmt(ratio, 2)} | {fmt(self.mfield(sc, sv, 'p99'), 3)} | "
                            f"{fmt(self.mfield(sc, sv, 'cpu_s'), 2)} | "
                            f"{fmt(self.mfield(sc, sv, None, per_cpu))} | {fmt(cpur, 2)} | "
                            f"{per} |")
        return "\n".join(rows)

    def table_stall(self):
        rows = ["| server | median MB/s | MB/s vs before | longest ticker gap ms (median) | "
                "longest ticker gap ms (worst) | per-repetition gap ms |",
                "|---|---|---|---|---|---|"]
        for sv in self.servers:
            rs = self.runs("stall-200m", sv)
            if not rs:
                continue
            gaps = [r["gap_ms"] for r in sorted(rs, key=lambda r: r["rep"])]
            base = self.mfield("stall-200m", "uvsocket-base", "value")
            mine = self.mfield("stall-200m", sv, "value")
            vs = fmt(mine / base, 2) if base and sv != "uvsocket-base" else ""
            rows.append(f"| {LABELS[sv]} | {fmt(mine)} | {vs} | {fmt(med(gaps), 1)} | "
                        f"{fmt(max(gaps), 1)} | {' '.join(fmt(g, 1) for g in gaps)} |")
        return "\n".join(rows)

    def table_bulk(self):
        rows = ["| scenario | server | median MB/s | ratio to C | server CPU s | MB per CPU-s | "
                "vs C | peak RSS MB | per-repetition MB/s |",
                "|---|---|---|---|---|---|---|---|---|"]
        for sc in self.scenarios_of("bulk"):
            for sv in self.servers:
                if not supports(sv, "bulk"):
                    continue
                rs = self.runs(sc, sv)
                if not rs:
                    rows.append(f"| {sc} | {LABELS[sv]} | failed | | | | | | |")
                    continue
                hwm = self.mfield(sc, sv, "hwm_kb")
                per = " ".join(fmt(r["value"]) for r in sorted(rs, key=lambda r: r["rep"]))
                rows.append(
                    f"| {sc} | {LABELS[sv]} | {fmt(self.mfield(sc, sv, 'value'))} | "
                    f"{fmt(ratio_median(self.records, sc, sv, 'value'), 2)} | "
                    f"{fmt(self.mfield(sc, sv, 'cpu_s'), 2)} | "
                    f"{fmt(self.mfield(sc, sv, None, per_cpu))} | "
                    f"{fmt(ratio_median(self.records, sc, sv, None, per_value=per_cpu), 2)} | "
                    f"{fmt(hwm / 1024 if hwm else None, 1)} | {per} |")
        return "\n".join(rows)

    def table_hold(self):
        rows = ["| scenario | server | bytes per connection | RSS before → holding (MB) | "
                "verified / conns | CPU while idle (ms) | wake-ups while idle | "
                "per-repetition bytes/conn |",
                "|---|---|---|---|---|---|---|---|"]
        for sc in self.scenarios_of("hold"):
            for sv in self.servers:
                if not supports(sv, "hold"):
                    continue
                rs = self.runs(sc, sv)
                if not rs:
                    rows.append(f"| {sc} | {LABELS[sv]} | failed | | | | | |")
                    continue
                base = self.mfield(sc, sv, "rss_base_kb")
                held = self.mfield(sc, sv, "rss_held_kb")
                idle = self.mfield(sc, sv, "idle_cpu_s")
                per = " ".join(fmt(r["value"]) for r in sorted(rs, key=lambda r: r["rep"]))
                rows.append(
                    f"| {sc} | {LABELS[sv]} | {fmt(self.mfield(sc, sv, 'value'))} | "
                    f"{fmt(base / 1024 if base else None, 1)} → "
                    f"{fmt(held / 1024 if held else None, 1)} | "
                    f"{held_count(rs)} | "
                    f"{fmt(idle * 1000 if idle is not None else None, 1)} | "
                    f"{fmt(max(r['wakeups'] for r in rs))} | {per} |")
        return "\n".join(rows)

    def table_timers(self):
        rows = ["| implementation | late p50 ms | late p99 ms | late max ms | early wake-ups | "
                "CPU s | CPU / wall time | per-repetition p99 ms |",
                "|---|---|---|---|---|---|---|---|"]
        for sv in self.servers:
            rs = self.runs("timers", sv)
            if not rs:
                continue
            per = " ".join(fmt(r["p99"], 3) for r in sorted(rs, key=lambda r: r["rep"]))
            rows.append(
                f"| {LABELS[sv]} | {fmt(self.mfield('timers', sv, 'p50'), 3)} | "
                f"{fmt(self.mfield('timers', sv, 'p99'), 3)} | "
                f"{fmt(self.mfield('timers', sv, 'max'), 3)} | "
                f"{fmt(self.mfield('timers', sv, 'early'))} of "
                f"{fmt(self.mfield('timers', sv, 'wakeups'))} | "
                f"{fmt(self.mfield('timers', sv, 'cpu_s'), 3)} | "
                f"{fmt(self.mfield('timers', sv, None, busy), 0)} % | {per} |")
        return "\n".join(rows)

    # -- targets --
    def targets(self):
        rows = ["| target | measured | verdict |", "|---|---|---|"]
        sv = "uvsocket"

        def verdict(ok):
            if ok is None:
                return "not measured"
            return "met" if ok else "**not met**"

        def have(sc):
            return bool(self.runs(sc, sv))

        if have("echo-1000"):
            r = ratio_median(self.records, "echo-1000", sv, "value")
            rows.append(f"| echo 1,000 conns ≥ 0.9× C | {fmt(r, 2)}× | "
                        f"{verdict(r >= 0.9 if r is not None else None)} |")
            rs = self.runs("echo-1000", sv)
            served = min(x.get("served", 0) for x in rs)
            conns = rs[0].get("conns", 1000)
            rows.append(f"| echo 1,000 conns: every client served | {served:.0f}/{conns:.0f} "
                        f"(worst repetition) | {verdict(served >= conns)} |")
            p = ratio_median(self.records, "echo-1000", sv, "p99")
            rows.append(f"| echo 1,000 conns: p99 ≤ 1.5× C's | {fmt(p, 2)}× | "
                        f"{verdict(p <= 1.5 if p is not None else None)} |")
        if have("echo-10000"):
            r = ratio_median(self.records, "echo-10000", sv, "value")
            rows.append(f"| echo 10,000 conns ≥ 0.9× C | {fmt(r, 2)}× | "
                        f"{verdict(r >= 0.9 if r is not None else None)} |")
        if have("bulk-64k"):
            r = ratio_median(self.records, "bulk-64k", sv, "value")
            rows.append(f"| bulk, receive(65536) ≥ 0.6× C | {fmt(r, 2)}× | "
                        f"{verdict(r >= 0.6 if r is not None else None)} |")
        for sc in self.scenarios_of("http"):
            if not have(sc) or not self.runs(sc, "luv"):
                continue
            r = ratio_median(self.records, sc, sv, "value", ref="luv")
            rows.append(f"| {sc}: requests/s ≥ luv | {fmt(r, 2)}× luv | "
                        f"{verdict(r >= 1.0 if r is not None else None)} |")
            c = ratio_median(self.records, sc, sv, None, ref="luv", per_value=per_cpu)
            rows.append(f"| {sc}: requests per server CPU-second ≥ luv | {fmt(c, 2)}× luv | "
                        f"{verdict(c >= 1.0 if c is not None else None)} |")
        for sc in self.scenarios_of("http"):
            for hsv in ("uvsocket-httpd", "uvsocket-httpd-base"):
                if not self.runs(sc, hsv) or not self.runs(sc, "openresty"):
                    continue
                what = "socket.http.server" + (" (before)" if hsv.endswith("-base") else "")
                r = ratio_median(self.records, sc, hsv, "value", ref="openresty")
                rows.append(f"| {sc}: {what} requests/s ≥ OpenResty (1 worker) | "
                            f"{fmt(r, 2)}× OpenResty | "
                            f"{verdict(r >= 1.0 if r is not None else None)} |")
                c = ratio_median(self.records, sc, hsv, None, ref="openresty",
                                 per_value=per_cpu)
                rows.append(f"| {sc}: {what} requests per server CPU-second ≥ "
                            f"OpenResty | {fmt(c, 2)}× OpenResty | "
                            f"{verdict(c >= 1.0 if c is not None else None)} |")
        for wsv in ("uvsocket", "uvsocket-httpd"):
            if not (self.runs("workers-1", wsv) and self.runs("workers-2", wsv)):
                continue
            c = ratio_median(self.records, "workers-2", wsv, None, ref=wsv, per_value=per_cpu,
                             ref_scenario="workers-1")
            rows.append(f"| {LABELS[wsv]}, 2 workers: requests per server CPU-second within "
                        f"10 % of 1 worker's | {fmt(c, 2)}× | "
                        f"{verdict(c >= 0.9 if c is not None else None)} |")
        if have("ws-1000") and self.runs("ws-1000", "python-ws"):
            r = ratio_median(self.records, "ws-1000", sv, "value", ref="python-ws")
            rows.append(f"| ws-1000: messages/s ≥ python3-websockets | {fmt(r, 2)}× | "
                        f"{verdict(r >= 1.0 if r is not None else None)} |")
        if have("ws-1000"):
            r = ratio_median(self.records, "ws-1000", sv, "value")
            rows.append(f"| ws-1000: messages/s vs the C libuv WebSocket echo (no target) | "
                        f"{fmt(r, 2)}× C | measured |")
        if have("hold-10000"):
            b = self.mfield("hold-10000", sv, "value")
            rows.append(f"| RSS per idle connection ≤ 2 KiB, task included | {fmt(b)} bytes | "
                        f"{verdict(b <= 2048 if b is not None else None)} |")
            rs = self.runs("hold-10000", sv)
            cpu = max(x.get("idle_cpu_s") or 0 for x in rs)
            wk = max(x.get("wakeups") or 0 for x in rs)
            rows.append(f"| CPU while idle 0, no wake-ups (10,000 idle connections) | "
                        f"{cpu * 1000:.1f} ms CPU, {wk:.0f} wake-ups | "
                        f"{verdict(cpu < 0.0005 and wk == 0)} |")
        if have("timers"):
            b = self.mfield("timers", sv, None, busy)
            c = self.mfield("timers", "c", None, busy)
            rows.append(f"| CPU while idle: 1,000 tasks asleep in socket.sleep use the CPU only "
                        f"to wake up (timers scenario, CPU below 25 % of wall time) | "
                        f"{fmt(b, 0)} % of wall time (C: {fmt(c, 0)} %) | "
                        f"{verdict(b < 25 if b is not None else None)} |")
        return "\n".join(rows)

    def problems(self):
        bad = [r for r in self.records if "error" in r or r.get("errors") or r.get("server_exit")]
        if not bad:
            return "None: every run completed without errors."
        out = []
        for r in bad:
            what = r.get("error") or (f"{r['errors']:.0f} client-side errors"
                                      if r.get("errors") else "")
            if r.get("server_exit"):
                what += f" (server exit status {r['server_exit']})"
            out.append(f"- {r['scenario']}, {LABELS[r['server']]}, repetition {r['rep'] + 1}: "
                       f"{what}")
        return "\n".join(out)

    def markdown(self, template, png_name):
        m = self.meta
        results = []
        if self.scenarios_of("echo"):
            results += ["### Line echo (loadgen -m echo, 64-byte lines, closed loop)", "",
                        self.table_throughput("echo", "requests/s", "request"), ""]
        if self.scenarios_of("http"):
            results += ["### HTTP/1.1 keep-alive hello (wrk -t1)", "",
                        self.table_throughput("http", "requests/s", "request"), ""]
        if self.scenarios_of("workers"):
            results += ["### Worker processes: the HTTP hello with serve{workers = N} "
                        "(wrk -t1, 100 connections; CPU of the supervisor and every worker)", "",
                        self.table_workers(), ""]
        if self.scenarios_of("ws"):
            results += ["### WebSocket echo (loadgen -m ws: 64-byte text messages, closed loop)",
                        "", self.table_throughput("ws", "messages/s", "message"), ""]
        if self.scenarios_of("accept"):
            results += ["### Accept rate (loadgen -m accept: connect, one line, close; "
                        "32 at a time)", "",
                        self.table_throughput("accept", "connections/s", "connection"), ""]
        if self.scenarios_of("bulk"):
            results += ["### Bulk echo (loadgen -m bulk, one connection)", "",
                        self.table_bulk(), ""]
        if self.scenarios_of("stall"):
            results += ["### Fairness: a ticker task while one connection streams 200 MiB each "
                        "way (loadgen -m bulk -b 200 MiB)", "", self.table_stall(), ""]
        if self.scenarios_of("hold"):
            results += ["### Idle connections (loadgen -m hold; hold-silent: clients never send)",
                        "", self.table_hold(), ""]
        if self.scenarios_of("timers"):
            results += [f"### Timer accuracy (1,000 sleeping tasks, intervals "
                        f"{TIMER_LO_MS}–{TIMER_HI_MS} ms)", "", self.table_timers(), ""]
        run_info = (
            f"- Profile: **{m['profile']}**: {m['reps']} repetition(s), warm-up "
            f"{m['warmup']} s, measurement {m['duration']} s, hold {m['hold']} s"
            f"{', server and client pinned to separate CPUs' if m['pin'] else ''}.\n"
            f"- Date: {m['date']}; uvsocket {m['commit']}; total time {m['elapsed']:.0f} s.\n"
            f"- Machine: {m['cpus']} CPUs ({m['cpu_model']}), Linux {m['kernel']}; "
            f"load average {m['load_before']} before, {m['load_after']} after.\n"
            f"- Software: Lua {m['lua']}, libuv {m['libuv']}, luv {m['luv']}, "
            f"cqueues {m['cqueues']}, {m['wrk']}.")
        if m["profile"] == "quick":
            banner = ("> **Quick run** (`bench/run --quick`): one short repetition, for checking "
                      "that everything works. The numbers are indicative only; quote the full "
                      "run.")
        else:
            banner = ("> Full run (`bench/run`). Medians over repetitions; ratios are medians "
                      "of per-repetition ratios to the C server measured in the same "
                      "repetition.")
        text = template
        for key, value in (("BANNER", banner), ("RUN_INFO", run_info),
                           ("TARGETS", self.targets()), ("RESULTS", "\n".join(results).rstrip()),
                           ("PROBLEMS", self.problems()), ("PLOT", png_name)):
            text = text.replace("{{" + key + "}}", value)
        return text

    # -- plot --
    def plot(self, png_path, workdir):
        gp = shutil.which("gnuplot")
        if not gp:
            return "gnuplot not found"
        scs = [s for s in SCENARIO_NAMES
               if not s.startswith(("hold", "timers", "workers"))
               and any(self.runs(s, v) for v in self.servers)]
        if not scs:
            return "nothing to plot"
        data = os.path.join(workdir, "plot.dat")
        top = [1.0, 1.0]  # highest ratio in each panel
        with open(data, "w") as f:
            f.write("scenario " + " ".join(f'"{LABELS[s]}"' for s in self.servers) + "\n")
            for sc in scs:
                vals = []
                for sv in self.servers:
                    r = ratio_median(self.records, sc, sv, "value")
                    c = ratio_median(self.records, sc, sv, None, per_value=per_cpu)
                    vals.append((r, c))
                    top[0] = max(top[0], r or 0)
                    top[1] = max(top[1], c or 0)
                f.write(sc + " " + " ".join(f"{v[0]:.3f}" if v[0] is not None else "NaN"
                                            for v in vals))
                f.write(" " + " ".join(f"{v[1]:.3f}" if v[1] is not None else "NaN"
                                       for v in vals) + "\n")
        n = len(self.servers)
        title = "quick run, indicative only" if self.meta["profile"] == "quick" else \
            f"{self.meta['reps']} repetitions, medians"
        plots1 = ", ".join(
            f"'{data}' using {i + 2}:xtic(1) title columnhead({i + 2})" for i in range(n))
        plots2 = ", ".join(
            f"'{data}' using {n + i + 2}:xtic(1) title columnhead({i + 2})" for i in range(n))
        script = f"""
set terminal pngcairo size 1100,800 font "sans,10" noenhanced
set output '{png_path}'
set multiplot layout 2,1 title "uvsocket benchmarks ({title}); ratio to the C libuv server"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set grid ytics
set key outside right top
set lmargin 10
set rmargin 24
set xtics rotate by -20
set arrow 1 from graph 0, first 0.9 to graph 1, first 0.9 nohead dt 2 lc rgb "#aa0000"
set ylabel "throughput / C"
set yrange [0:{top[0] * 1.1:.2f}]
plot {plots1}
set ylabel "work per server CPU-second / C"
set yrange [0:{top[1] * 1.1:.2f}]
plot {plots2}
unset multiplot
"""
        path = os.path.join(workdir, "plot.gp")
        with open(path, "w") as f:
            f.write(script)
        r = subprocess.run([gp, path], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            # pngcairo may be missing from a gnuplot build: fall back to the libgd terminal.
            script = script.replace('pngcairo size 1100,800 font "sans,10"', "png size 1100,800")
            with open(path, "w") as f:
                f.write(script)
            r = subprocess.run([gp, path], capture_output=True, text=True, timeout=60)
        return None if r.returncode == 0 else r.stderr.strip()[-300:]


def held_count(rs):
    if rs[0].get("silent"):
        return f"{rs[0]['conns']:.0f} silent"
    return f"{min(r['verified'] for r in rs):.0f}/{rs[0]['conns']:.0f}"


def params_workers(scenario):
    for s in SCENARIOS:
        if s[0] == scenario:
            return s[3].get("workers")
    return None


def params_conns(scenario):
    for s in SCENARIOS:
        if s[0] == scenario:
            return s[3].get("conns", "")
    return ""


# ------------------------------------------------------------------------------------------------
# Metadata


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def metadata(env, args, prof):
    cpu_model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    commit = sh(["git", "-C", env.root, "rev-parse", "--short", "HEAD"]) or "(no git)"
    # --no-optional-locks: only look; never refresh the index of the checkout being measured.
    if sh(["git", "--no-optional-locks", "-C", env.root, "status", "--porcelain",
           "--untracked-files=no"]):
        commit += " + local changes"
    luv = sh(["lua5.4", "-e", 'io.write(require("luv").version_string())'])
    cq = sh(["lua5.4", "-e", 'io.write(require("cqueues").VERSION)'])
    wrk = sh(["sh", "-c", "wrk --version 2>&1 | head -1"]).split(" [")[0]
    return {
        "profile": args.profile, "reps": prof["reps"], "warmup": prof["warmup"],
        "duration": prof["duration"], "hold": prof["hold"], "pin": args.pin,
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "commit": commit,
        "cpus": os.cpu_count(), "cpu_model": cpu_model or platform.processor(),
        "kernel": platform.release(), "load_before": loadavg(),
        "lua": sh(["lua5.4", "-v"]).split()[1] if sh(["lua5.4", "-v"]) else "?",
        "libuv": sh(["pkg-config", "--modversion", "libuv"]) or "?",
        "luv": luv or "?", "cqueues": cq or "?", "wrk": wrk or "wrk",
    }


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


# ------------------------------------------------------------------------------------------------


def parse_args():
    ap = argparse.ArgumentParser(
        prog="bench/run",
        description="uvsocket benchmark suite: runs every server against the load generator "
                    "and writes docs/performance.md and docs/performance.png.")
    ap.add_argument("--root", help=argparse.SUPPRESS)
    ap.add_argument("--build", help=argparse.SUPPRESS)
    ap.add_argument("--no-install", action="store_true", help="do not install Debian packages")
    ap.add_argument("--no-build", action="store_true", help="reuse build-bench/ as it is")
    ap.add_argument("--quick", dest="profile", action="store_const", const="quick",
                    default="full", help="short smoke run: 1 repetition of ~1 s per run")
    ap.add_argument("--reps", type=int, help="repetitions of each scenario")
    ap.add_argument("--duration", type=float, help="measurement seconds per run")
    ap.add_argument("--warmup", type=float, help="warm-up seconds per run")
    ap.add_argument("--hold", type=float, help="seconds the idle connections are held")
    ap.add_argument("--scenarios", default="all",
                    help="comma-separated subset of: " + ", ".join(SCENARIO_NAMES))
    ap.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                    help="comma-separated subset of: " + ", ".join(SERVER_ORDER) +
                         " (c is always included: ratios need it; uvsocket-gen is uvsocket "
                         "with collectgarbage(\"generational\"))")
    ap.add_argument("--base-build", metavar="DIR",
                    help="build directory of another uvsocket (e.g. the commit before a change), "
                         "run as the server uvsocket-base")
    ap.add_argument("--pin", action="store_true",
                    help="pin each server to CPU 1 and the load generator to CPU 0")
    ap.add_argument("--output", help="markdown report (default docs/performance.md)")
    ap.add_argument("--plot", help="PNG plot (default docs/performance.png)")
    ap.add_argument("--results", help="also keep the raw records (JSON lines) here")
    ap.add_argument("--report-only", metavar="RESULTS",
                    help="write the report from a saved results file without running anything")
    return ap.parse_args()


def main():
    args = parse_args()
    root = args.root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = args.build or os.path.join(root, "build-bench")
    env = Env(root, build, args.base_build)
    output = args.output or os.path.join(root, "docs", "performance.md")
    png = args.plot or os.path.join(root, "docs", "performance.png")
    template_path = os.path.join(root, "bench", "performance.md.in")

    if args.report_only:
        with open(args.report_only) as f:
            lines = [json.loads(l) for l in f if l.strip()]
        meta, records = lines[0]["meta"], lines[1:]
        servers = sorted({r["server"] for r in records}, key=SERVER_ORDER.index)
        write_report(records, servers, meta, template_path, output, png, env)
        return 0

    prof = dict(PROFILES[args.profile])
    for k in ("reps", "duration", "warmup", "hold"):
        if getattr(args, k) is not None:
            prof[k] = getattr(args, k)
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    for s in servers:
        if s not in LABELS:
            sys.exit(f"bench: unknown server {s!r}")
    if "c" not in servers:
        servers.insert(0, "c")
    servers = [s for s in SERVER_ORDER if s in servers]
    if "openresty" in servers and not (shutil.which("nginx") and
                                       os.path.exists(OPENRESTY_MODULE)):
        print("bench: OpenResty left out: nginx or libnginx-mod-http-lua is not installed",
              file=sys.stderr)
        servers.remove("openresty")
    if "python-ws" in servers and subprocess.run(
            ["/usr/bin/python3", "-c", "import websockets"], capture_output=True).returncode:
        print("bench: python3-websockets left out: not installed", file=sys.stderr)
        servers.remove("python-ws")
    if args.scenarios == "all":
        scenarios = list(SCENARIOS)
    else:
        wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
        for w in wanted:
            if w not in SCENARIO_NAMES:
                sys.exit(f"bench: unknown scenario {w!r}")
        scenarios = [s for s in SCENARIOS if s[0] in wanted]
    # The "*a" scenario sends BULK_TRANSFER bytes per connection, then half-closes.
    scenarios = [(n, g, m, dict(p, all=(n == "bulk-all"))) for (n, g, m, p) in scenarios]

    # Descriptors: 10,000 connections need as many on each side.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 20000 if hard == resource.RLIM_INFINITY else min(hard, 20000)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    need = max(p.get("conns", 0) for (_, _, _, p) in scenarios) + 100
    if want < need:
        sys.exit(f"bench: ulimit -n is {want}; the chosen scenarios need {need}")
    for prog in ("loadgen", "uvserver", "uvtimers"):
        if not os.access(os.path.join(env.bin, prog), os.X_OK):
            sys.exit(f"bench: {env.bin}/{prog} is missing: run bench/run (it builds)")
    if not os.path.exists(os.path.join(build, "stage", "lib", "lua", "5.4", "socket", "core.so")):
        sys.exit(f"bench: uvsocket is not built in {build}")

    atexit.register(stop_all)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    meta = metadata(env, args, prof)
    env.warmup = prof["warmup"]
    runner = Runner(env, prof, args)
    records = []
    t0 = time.monotonic()
    results_path = args.results or os.path.join(
        env.logs, "results-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".jsonl")
    total = prof["reps"] * sum(1 for sc in scenarios for sv in servers if supports(sv, sc[1]))
    done = 0
    for scenario in scenarios:
        for rep in range(prof["reps"]):
            order = servers[rep % len(servers):] + servers[:rep % len(servers)]
            for server in order:
                if not supports(server, scenario[1]):
                    continue
                done += 1
                rec = runner.run(scenario, server, rep)
                if rec is None:
                    continue  # not measured for this server
                records.append(rec)
                show = rec.get("error") or summary(rec)
                print(f"[{done}/{total}] {scenario[0]:<11} rep {rep + 1} {LABELS[server]:<19} "
                      f"{show}", flush=True)
    meta["elapsed"] = time.monotonic() - t0
    meta["load_after"] = loadavg()
    with open(results_path, "w") as f:
        f.write(json.dumps({"meta": meta}) + "\n")
        for r in records:
            f.write(json.dumps(r) + "\n")
    print(f"bench: raw results in {results_path}")
    write_report(records, servers, meta, template_path, output, png, env)
    return 0


def summary(rec):
    g = rec["group"]
    if g in ("echo", "http", "ws", "workers"):
        s = f"{rec['value']:,.0f} req/s  p99 {rec.get('p99') or 0:.2f} ms"
    elif g == "accept":
        s = f"{rec['value']:,.0f} conn/s  p99 {rec.get('p99') or 0:.2f} ms"
    elif g == "bulk":
        s = f"{rec['value']:,.0f} MB/s"
    elif g == "stall":
        s = f"{rec['value']:,.0f} MB/s  longest ticker gap {rec.get('gap_ms', 0):.1f} ms"
    elif g == "hold":
        s = (f"{rec['value']:,.0f} bytes/conn  idle CPU {1000 * (rec.get('idle_cpu_s') or 0):.1f}"
             f" ms  wake-ups {rec.get('wakeups') or 0:.0f}")
    else:
        s = f"late p50 {rec['p50']:.2f} ms  p99 {rec['p99']:.2f} ms  max {rec['max']:.2f} ms"
    if rec.get("cpu_s") and rec.get("requests") and g != "hold":
        s += f"  srv CPU {rec['cpu_s']:.2f} s"
        if g == "workers":
            s += f"  {rec['requests'] / rec['cpu_s']:,.0f} req/CPU-s"
    if rec.get("errors"):
        s += f"  ERRORS {rec['errors']:.0f}"
    return s


def write_report(records, servers, meta, template_path, output, png, env):
    report = Report(records, servers, meta)
    with open(template_path) as f:
        template = f.read()
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    err = report.plot(os.path.abspath(png), env.logs)
    if err:
        print(f"bench: no plot: {err}", file=sys.stderr)
    rel_png = os.path.relpath(os.path.abspath(png), os.path.dirname(os.path.abspath(output)))
    # The TLS section comes from bench/tls_bench.py, which bench/run runs before this driver.
    tls_path = os.path.join(env.logs, "tls.md")
    tls_text = "(not measured in this run: `bench/run --no-tls`, or bench/tls_bench.py failed)"
    if os.path.exists(tls_path):
        with open(tls_path) as f:
            tls_text = f.read().rstrip()
    # The socket.http pool section comes from bench/pool_bench.lua, which bench/run runs too.
    pool_path = os.path.join(env.logs, "pool.md")
    pool_text = "(not measured in this run: `bench/run --no-pool`, or bench/pool_bench.lua failed)"
    if os.path.exists(pool_path):
        with open(pool_path) as f:
            pool_text = f.read().rstrip()
    with open(output, "w") as f:
        f.write(report.markdown(template, rel_png).replace("{{TLS}}", tls_text)
                .replace("{{POOL}}", pool_text))
    print(f"bench: wrote {output}" + ("" if err else f" and {png}"))
    print()
    print(report.targets())


if __name__ == "__main__":
    sys.exit(main())
