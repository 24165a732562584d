#!/usr/bin/env python3
"""bench/tls_bench.py: the TLS scenarios of bench/run (docs/performance.md, "TLS").

    python3 bench/tls_bench.py --root ROOT --build BUILD [--out FILE] [--quick]

Three comparisons, each measured in the same run as its reference, on loopback:
  bulk        one connection sends N MiB through TLS 1.3 and the server reads them: the uvsocket
              pair (bench/servers/uvsocket/tls.lua, socket.tls on both ends) against the C
              OpenSSL pair (bench/servers/c/tlsbulk.c); MiB/s, median of the repetitions.
  handshakes  `openssl s_time` against the uvsocket TLS server and against `openssl s_server`:
              full handshakes (-new) and resumed ones (-reuse, TLS 1.2: s_time does not resume
              TLS 1.3 sessions); connections per second and per server CPU-second.
  https       wrk at 100 connections over keep-alive https: the uvsocket hello server against
              nginx's TLS (one worker); requests per second and per server CPU-second.
Prints key=value lines and writes the markdown section to --out.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

CLK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, limit=10.0):
    end = time.time() + limit
    while time.time() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def cpu_seconds(pid):
    """utime + stime of a process and its threads, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


class Server:
    def __init__(self, argv, env, port):
        self.port = port
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(port):
            self.stop()
            raise RuntimeError("server did not start: %s" % " ".join(argv))

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def run(argv, env=None, timeout=120):
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout).stdout


def make_cert(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", d + "/key.pem", "-out",
                    d + "/cert.pem", "-days", "1", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True,
                   capture_output=True)
    return d + "/cert.pem", d + "/key.pem"


def bulk(a, env, cert, key, mb, reps):
    lua = [a.lua, os.path.join(a.root, "bench/servers/uvsocket/tls.lua")]
    c = os.path.join(a.build, "bench/tlsbulk")
    out = {"c": [], "uvsocket": []}
    for _ in range(reps):
        for name, server, client in (
                ("c", [c, "server"], [c, "client"]),
                ("uvsocket", lua + ["bulk-server"], lua + ["bulk-client"])):
            port = free_port()
            srv = Server(server + [str(port), cert, key], env, port)
            try:
                text = run(client + [str(port), str(mb)], env)
            finally:
                srv.stop()
            m = re.search(r"mbps=([\d.]+)", text)
            if m:
                out[name].append(float(m.group(1)))
    return out


def s_time(port, args, seconds):
    text = run(["openssl", "s_time", "-connect", "127.0.0.1:%d" % port, "-time",
                str(seconds)] + args, timeout=seconds + 30)
    m = re.search(r"(\d+) connections in (\d+) real seconds", text)
    return int(m.group(1)) if m else 0


def handshakes(a, env, cert, key, seconds):
    lua = [a.lua, os.path.join(a.root, "bench/servers/uvsocket/tls.lua")]
    servers = {
        "uvsocket": lambda p: lua + ["server", str(p), cert, key],
        "s_server": lambda p: ["openssl", "s_server", "-quiet", "-accept", "127.0.0.1:%d" % p,
                               "-cert", cert, "-key", key, "-naccept", "10000000"],
    }
    out = {}
    for name, argv in servers.items():
        port = free_port()
        srv = Server(argv(port), env, port)
        try:
            for kind, args in (("full", ["-new"]), ("resumed", ["-reuse", "-tls1_2"])):
                cpu0, t0 = srv.cpu(), time.time()
                n = s_time(port, args, seconds)
                cpu, wall = srv.cpu() - cpu0, time.time() - t0
                out[(name, kind)] = (n / seconds, n / cpu if cpu > 0 else 0.0)
        finally:
            srv.stop()
    return out


def nginx_conf(d, port, cert, key):
    user = "user root root;\n" if os.getuid() == 0 else ""
    with open(d + "/nginx.conf", "w") as f:
        f.write("""%sdaemon off;
master_process off;
worker_processes 1;
pid %s/nginx.pid;
error_log %s/error.log crit;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:%d ssl;
    ssl_certificate %s;
    ssl_certificate_key %s;
    location / { return 200 "Hello, World!"; }
  }
}
""" % (user, d, d, port, cert, key))
    return d + "/nginx.conf"


def https(a, env, cert, key, d, seconds, reps):
    wrk = shutil.which("wrk")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not wrk or not os.path.exists(nginx):
        return None
    lua = [a.lua, os.path.join(a.root, "bench/servers/uvsocket/tls.lua")]
    out = {"uvsocket": [], "nginx": []}
    for _ in range(reps):
        for name in ("uvsocket", "nginx"):
            port = free_port()
            if name == "uvsocket":
                argv = lua + ["https", str(port), cert, key]
            else:
                argv = [nginx, "-p", d, "-e", d + "/error.log", "-c",
                        nginx_conf(d, port, cert, key)]
            srv = Server(argv, env, port)
            try:
                run([wrk, "-t1", "-c100", "-d1s", "https://127.0.0.1:%d/" % port])  # warm-up
                cpu0 = srv.cpu()
                text = run([wrk, "-t1", "-c100", "-d%ds" % seconds,
                            "https://127.0.0.1:%d/" % port], timeout=seconds + 30)
                cpu = srv.cpu() - cpu0
            finally:
                srv.stop()
            m = re.search(r"Requests/sec:\s+([\d.]+)", text)
            rps = float(m.group(1)) if m else 0.0
            out[name].append((rps, rps * seconds / cpu if cpu > 0 else 0.0))
    return out


def med(values):
    return statistics.median(values) if values else 0.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--out")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--lua", default="lua5.4")
    a = ap.parse_args()
    stage = os.path.join(a.build, "stage")
    env = dict(os.environ)
    env["LUA_PATH"] = "%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;" % (stage, stage)
    env["LUA_CPATH"] = "%s/lib/lua/5.4/?.so;;" % stage
    reps = 1 if a.quick else 3
    d = tempfile.mkdtemp(prefix="uvs-tlsbench-")
    try:
        cert, key = make_cert(d)
        b = bulk(a, env, cert, key, 200 if a.quick else 400, reps)
        h = handshakes(a, env, cert, key, 2 if a.quick else 5)
        w = https(a, env, cert, key, d, 2 if a.quick else 5, reps)
    finally:
        shutil.rmtree(d, ignore_errors=True)
    bc, bu = med(b["c"]), med(b["uvsocket"])
    lines = ["### TLS (socket.tls, OpenSSL %s)" % run(["openssl", "version"]).split()[1], "",
             "| scenario | uvsocket | reference | ratio |", "|---|---|---|---|",
             "| bulk, one connection, MiB/s (C OpenSSL pair) | %.0f | %.0f | %.2f |"
             % (bu, bc, bu / bc if bc else 0)]
    print("tls_bulk_uvsocket_mbps=%.1f tls_bulk_c_mbps=%.1f ratio=%.2f"
          % (bu, bc, bu / bc if bc else 0))
    for kind in ("full", "resumed"):
        u, s = h[("uvsocket", kind)], h[("s_server", kind)]
        lines.append("| %s handshakes/s (openssl s_server) | %.0f | %.0f | %.2f |"
                     % (kind, u[0], s[0], u[0] / s[0] if s[0] else 0))
        lines.append("| %s handshakes per server CPU-second | %.0f | %.0f | %.2f |"
                     % (kind, u[1], s[1], u[1] / s[1] if s[1] else 0))
        print("tls_%s_uvsocket=%.0f/s,%.0f/cpu-s tls_%s_s_server=%.0f/s,%.0f/cpu-s"
              % (kind, u[0], u[1], kind, s[0], s[1]))
    if w:
        ur, uc = med([x[0] for x in w["uvsocket"]]), med([x[1] for x in w["uvsocket"]])
        nr, nc = med([x[0] for x in w["nginx"]]), med([x[1] for x in w["nginx"]])
        lines.append("| https hello, wrk -c100, requests/s (nginx, 1 worker) | %.0f | %.0f | %.2f |"
                     % (ur, nr, ur / nr if nr else 0))
        lines.append("| https hello, requests per server CPU-second | %.0f | %.0f | %.2f |"
                     % (uc, nc, uc / nc if nc else 0))
        print("tls_https_uvsocket=%.0f/s,%.0f/cpu-s tls_https_nginx=%.0f/s,%.0f/cpu-s"
              % (ur, uc, nr, nc))
    lines += ["", "Medians of %d repetition(s). Bulk: TLS 1.3 with OpenSSL's default suite, the "
              "client sends, the server reads; both ends of each pair are processes of their own. "
              "Handshakes: `openssl s_time` is the client (it shares the two cores), so "
              "connections per server CPU-second is the steadier figure; resumed handshakes use "
              "TLS 1.2 session tickets because s_time does not resume TLS 1.3 sessions. The https "
              "server is bench/servers/uvsocket/tls.lua (a task per connection, `receive(\"*l\")`), "
              "not an HTTP server module." % reps]
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
