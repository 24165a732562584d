#!/usr/bin/env python3
"""spec/support/slowdns.py: a DNS server for spec/netns_spec.lua, run inside a private network
namespace on 127.0.0.1:53 (spec/support/netns.sh points the resolver at it). It answers A
queries for fast.uvsocket.test at once and for slow.uvsocket.test after DELAY seconds (127.0.0.1),
never answers for silent.uvsocket.test, and answers NXDOMAIN for any other name; AAAA queries
get an empty answer. Writes READY_FILE once bound.

Usage: slowdns.py READY_FILE [DELAY]"""
import socket, struct, sys, threading

READY, DELAY = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 1.0


def question(msg):
    i, labels = 12, []
    while msg[i]:
        labels.append(msg[i + 1:i + 1 + msg[i]].decode("ascii", "replace").lower())
        i += 1 + msg[i]
    qtype = struct.unpack("!H", msg[i + 1:i + 3])[0]
    return ".".join(labels), qtype, msg[12:i + 5]


def answer(msg, name, qtype, q):
    qid = msg[:2]
    if name not in ("fast.uvsocket.test", "slow.uvsocket.test"):
        return qid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + q  # NXDOMAIN
    if qtype != 1:
        return qid + struct.pack("!HHHHH", 0x8180, 1, 0, 0, 0) + q  # no record of that type
    rr = struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1")
    return qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + q + rr


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 53))
    with open(READY, "w") as f:
        f.write("ready\n")
    while True:
        msg, peer = s.recvfrom(512)
        try:
            name, qtype, q = question(msg)
        except (IndexError, struct.error):
            continue
        if name == "silent.uvsocket.test":
            continue
        reply = answer(msg, name, qtype, q)
        if name == "slow.uvsocket.test":
            threading.Timer(DELAY, s.sendto, (reply, peer)).start()
        else:
            s.sendto(reply, peer)


if __name__ == "__main__":
    main()
