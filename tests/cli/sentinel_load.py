#!/usr/bin/env python3
"""RECOMMEND load against recd for the Sentinel failover test.

usage: sentinel_load.py PORT USERS STOPFILE LIMIT_MS OUT_JSON [THREADS]

THREADS connections (default 4) send `RECOMMEND <user> COUNT 5 WITHMETA
NOTRACK` back to back, round-robin over the comma-separated USERS, until
STOPFILE exists. Every answer is classified by WITHMETA's kind
(personalized, popular, degraded); an error reply or a connection error is
"error", an answer slower than LIMIT_MS (or none within it: the socket
timeout) is "hang". Writes a JSON summary to OUT_JSON:
  counts            answers per class
  max_ms            the slowest answer
  window_ms         from the first answer that was not personalized to the
                    first personalized one after the last such answer (0
                    when every answer was personalized)
  last_personalized whether the final answer of every thread was personalized
  errors            up to 5 error texts
"""
import json
import os
import sys
import threading
import time

import redis

port, users, stopfile = int(sys.argv[1]), sys.argv[2].split(","), sys.argv[3]
limit_ms, out = float(sys.argv[4]), sys.argv[5]
nthreads = int(sys.argv[6]) if len(sys.argv) > 6 else 4
events = []  # (start, latency_ms, kind, thread)
lock = threading.Lock()


def worker(k):
    r = None
    i = k * 7
    while not os.path.exists(stopfile):
        if r is None:
            r = redis.Redis(port=port, socket_timeout=limit_ms / 1000.0,
                            socket_connect_timeout=limit_ms / 1000.0)
        user = users[i % len(users)]
        i += 1
        t0 = time.monotonic()
        try:
            rep = r.execute_command("RECOMMEND", user, "COUNT", "5", "WITHMETA", "NOTRACK")
            meta = rep[0]
            fields = {meta[j].decode(): meta[j + 1].decode() for j in range(0, len(meta) - 1, 2)}
            kind = fields.get("kind", "?")
        except redis.exceptions.TimeoutError:
            kind, r = "hang", None
        except redis.exceptions.ResponseError as e:
            kind = "error: " + str(e)
        except Exception as e:  # connection refused or reset: recd itself failed
            kind, r = "error: %s %s" % (type(e).__name__, e), None
        lat = (time.monotonic() - t0) * 1000.0
        if lat > limit_ms and not kind.startswith("error"):
            kind = "hang"
        with lock:
            events.append((t0, lat, kind, k))


threads = [threading.Thread(target=worker, args=(k,)) for k in range(nthreads)]
for t in threads:
    t.start()
for t in threads:
    t.join()

counts = {}
for _, _, kind, _ in events:
    key = "error" if kind.startswith("error") else kind
    counts[key] = counts.get(key, 0) + 1
bad = [e for e in events if e[2] != "personalized"]
window = 0.0
if bad:
    first_bad = min(e[0] for e in bad)
    last_bad = max(e[0] for e in bad)
    after = [e[0] + e[1] / 1000.0 for e in events if e[2] == "personalized" and e[0] > last_bad]
    window = ((min(after) if after else time.monotonic()) - first_bad) * 1000.0
last = {}
for e in events:
    last[e[3]] = e[2]
summary = {
    "counts": counts,
    "total": len(events),
    "max_ms": round(max((e[1] for e in events), default=0.0), 1),
    "window_ms": round(window, 1),
    "last_personalized": bool(last) and all(v == "personalized" for v in last.values()),
    "errors": sorted({e[2] for e in events if e[2].startswith("error")})[:5],
}
with open(out, "w") as f:
    json.dump(summary, f)
print(json.dumps(summary))
