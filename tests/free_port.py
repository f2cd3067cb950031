#!/usr/bin/python3
"""Prints a free loopback TCP port for a test or benchmark server.

Drawn at random between 10000 and the start of the kernel's ephemeral
range (/proc/sys/net/ipv4/ip_local_port_range), each candidate checked by
binding it. Why not bind(0): the kernel hands those out from the
ephemeral range, and any outgoing connection can take such a port as its
source port before the server binds it (a sentinel failed to start in a
loaded CI run). Falls back to bind(0) when the range below is too small.
Used by tests/cli/lib.sh, bench/e2e.sh, bench/paths.sh and bench/compare;
tests/unit/testutil.c has the same rule in C (tu_free_port).

usage: tests/free_port.py
"""
import random
import socket
import sys


def free_port():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph = 32768

    def take(port):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", port))
            return s.getsockname()[1]
        except OSError:
            return None
        finally:
            s.close()

    if eph - 10000 >= 1000:
        for _ in range(100):
            port = take(random.randrange(10000, eph))
            if port:
                return port
    return take(0)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        print(__doc__.strip().splitlines()[-1])
        sys.exit(0 if sys.argv[1] in ("-h", "--help") else 2)
    print(free_port())
