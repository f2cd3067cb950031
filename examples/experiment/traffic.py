#!/usr/bin/python3
"""Scripted shoppers for the A/B demo (scripts/experiment-demo.sh).

Each customer of future.csv (user,item,weight: purchases held out of the
histories recd reads) visits the home page once: RECOMMEND <user> COUNT 10
PLACEMENT home. They click every recommended item they are going to buy
and one other at random now and then, and buy the ones they were going to
buy anyway (the held-out purchases): FEEDBACK ... TYPE click, then TYPE
purchase with VALUE 1. Debian's python3-redis, as a storefront would.

usage: traffic.py PORT future.csv [max_customers] [seed]
"""
import csv
import random
import sys
from collections import defaultdict

import redis

port, future_csv = int(sys.argv[1]), sys.argv[2]
limit = int(sys.argv[3]) if len(sys.argv) > 3 else 0
rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 1)

future = defaultdict(set)
with open(future_csv, newline="") as f:
    for row in csv.DictReader(f):
        future[row["user"]].add(row["item"])

r = redis.Redis(port=port, decode_responses=True)
customers = sorted(future)
if limit:
    customers = customers[:limit]
shown = bought = 0
for i, user in enumerate(customers):
    items = r.execute_command("RECOMMEND", user, "COUNT", 10, "PLACEMENT", "home")
    shown += len(items)
    pipe = r.pipeline(transaction=False)
    for item in items:
        if item in future[user]:
            pipe.execute_command("FEEDBACK", user, item, "TYPE", "click")
            pipe.execute_command("FEEDBACK", user, item, "TYPE", "purchase", "VALUE", 1)
            bought += 1
        elif rng.random() < 0.02:
            pipe.execute_command("FEEDBACK", user, item, "TYPE", "click")
    pipe.execute()
    if (i + 1) % 1000 == 0:
        print(f"  {i + 1} customers, {shown} items shown, {bought} bought", flush=True)
print(f"  {len(customers)} customers, {shown} items shown, {bought} bought")
