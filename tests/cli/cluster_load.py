#!/usr/bin/env python3
"""RECOMMEND load against recd for the Redis Cluster failover test
(test_daemon_cluster.sh). Plain sockets and RESP, no client library.

usage: cluster_load.py PORT USERS STOPFILE LIMIT_MS OUT_JSON [THREADS]

THREADS connections (default 8) send `RECOMMEND <user> COUNT 5 WITHMETA`
back to back, in turn over the comma-separated USERS, until STOPFILE
exists. Every answer is classified by WITHMETA's kind (personalized,
popular, degraded); an error reply or a broken connection is "error", an
answer slower than LIMIT_MS (or none within it) is "hang". Writes a JSON
summary to OUT_JSON:
  counts             answers per class
  total              answers in all
  max_ms             the slowest answer
  window_ms          from the first answer that was not personalized to the
                     first personalized one after the last such answer (0
                     when every answer was personalized)
  tail_personalized  whether the last 50 answers were all personalized
  errors             up to 5 error texts
"""
import json
import os
import socket
import sys
import threading
import time

port, users, stopfile = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
limit_ms, out = float(sys.argv[4]), sys.argv[5]
nthreads = int(sys.argv[6]) if len(sys.argv) > 6 else 8
events = []  # (end time, latency ms, kind)
errors = []
lock = threading.Lock()


class RespError(Exception):
    pass


def encode(args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a.encode() if isinstance(a, str) else a
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)


def read_reply(f):
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest
    if t == b"-":
        raise RespError(rest.decode(errors="replace"))
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)
        if len(data) != n + 2:
            raise ConnectionError("connection closed")
        return data[:-2]
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    raise ConnectionError("bad reply type %r" % t)


def worker(k):
    sock = f = None
    i = k * 7
    while not os.path.exists(stopfile):
        if sock is None:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=limit_ms / 1000.0)
                f = sock.makefile("rb")
            except OSError as e:
                with lock:
                    events.append((time.monotonic(), 0.0, "error"))
                    errors.append("connect: %s" % e)
                time.sleep(0.05)
                continue
        user = users[i % len(users)]
        i += 1
        t0 = time.monotonic()
        try:
            sock.sendall(encode(["RECOMMEND", user, "COUNT", "5", "WITHMETA"]))
            rep = read_reply(f)
            meta = rep[0]
            fields = {meta[j].decode(): meta[j + 1].decode() for j in range(0, len(meta) - 1, 2)}
            kind = fields.get("kind", "?")
        except socket.timeout:
            kind = "hang"
            sock.close()
            sock = None
        except RespError as e:
            kind = "error"
            with lock:
                errors.append(str(e))
        except (OSError, ConnectionError) as e:
            kind = "error"
            with lock:
                errors.append(str(e))
            sock.close()
            sock = None
        t1 = time.monotonic()
        ms = (t1 - t0) * 1000.0
        if kind != "hang" and ms > limit_ms:
            kind = "hang"
        with lock:
            events.append((t1, ms, kind))


threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
events.sort()
counts = {}
for _, _, kind in events:
    counts[kind] = counts.get(kind, 0) + 1
bad = [e for e in events if e[2] != "personalized"]
window = 0.0
if bad:
    last_bad = bad[-1][0]
    after = [e for e in events if e[0] > last_bad and e[2] == "personalized"]
    end = after[0][0] if after else events[-1][0]
    window = (end - bad[0][0]) * 1000.0
tail = events[-50:]
summary = {
    "counts": counts,
    "total": len(events),
    "max_ms": round(max((e[1] for e in events), default=0.0), 1),
    "window_ms": round(window, 1),
    "tail_personalized": bool(tail) and all(e[2] == "personalized" for e in tail),
    "errors": errors[:5],
}
with open(out, "w") as fp:
    json.dump(summary, fp)
