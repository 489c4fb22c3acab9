#!/usr/bin/python3
"""Measure py.execnet popen channels on this machine, for comparison with
BenchmarkProcess* in this package (see BENCH.md).

Round trip: one small message there and back.
Stream:     small messages one way; ends when the peer acknowledged all.
Bulk:       1 MiB bytes messages one way; ends when the peer acknowledged all.

Usage: /usr/bin/python3 channel/bench_execnet.py [seconds-per-case]
Needs Debian's python3-execnet (apt-get install -y python3-execnet).
"""
import sys
import time

import execnet

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0

ECHO = """
while 1:
    x = channel.receive()
    if x is None:
        break
    channel.send(x)
"""

SINK = """
while 1:
    n = channel.receive()
    if n is None:
        break
    for i in range(n):
        channel.receive()
    channel.send(n)
"""


def timed(fn, n0):
    """Run fn(n) with n growing until one run takes SECONDS/3+; return s/op."""
    n = n0
    while True:
        t0 = time.perf_counter()
        fn(n)
        dt = time.perf_counter() - t0
        if dt > SECONDS / 3:
            return dt / n
        n = int(n * max(2, (SECONDS / 3) / max(dt, 1e-6) * 1.2))


def main():
    gw = execnet.makegateway("popen//python=" + sys.executable)
    print("execnet", execnet.__version__, "python", sys.version.split()[0])

    ch = gw.remote_exec(ECHO)
    msg = {"Seq": 1, "Kind": "ping"}

    def rt(n):
        for i in range(n):
            ch.send(msg)
            ch.receive()

    rt(100)
    per = timed(rt, 200)
    print("execnet RoundTrip %10.0f ns/op  (%.1f us)" % (per * 1e9, per * 1e6))
    ch.send(None)

    ch = gw.remote_exec(SINK)

    def stream(n):
        ch.send(n)
        for i in range(n):
            ch.send(msg)
        assert ch.receive() == n

    stream(100)
    per = timed(stream, 1000)
    print("execnet Stream    %10.0f ns/op  (%.0f msg/s)" % (per * 1e9, 1 / per))

    payload = bytes(1 << 20)

    def bulk(n):
        ch.send(n)
        for i in range(n):
            ch.send(payload)
        assert ch.receive() == n

    bulk(2)
    per = timed(bulk, 8)
    print("execnet Bulk      %10.0f ns/op  (%.1f MiB/s)" % (per * 1e9, 1 / per))
    ch.send(None)
    gw.exit()


if __name__ == "__main__":
    main()
