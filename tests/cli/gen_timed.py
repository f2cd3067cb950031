#!/usr/bin/env python3
"""Writes a purchase log whose structure lives in time, for the CLI tests.

usage: gen_timed.py OUT kind [users items seed]
  kind = clusters: users and items fall into 6 clusters, a user buys items
         of their own cluster, one purchase a day over 60 days, users start
         on different days (so a time cut has customers on both sides);
  kind = popular:  every user buys items drawn from one skewed (Zipf)
         distribution, whoever they are: nothing to learn but popularity.
"""
import random
import sys

out, kind = sys.argv[1], sys.argv[2]
users, items, seed = (int(x) for x in (sys.argv[3:6] or (200, 90, 1)))
rng = random.Random(seed)
day = 86400
t0 = 1700000000
with open(out, "w") as f:
    f.write("user,item,weight,timestamp\n")
    for u in range(users):
        start = t0 + rng.randrange(30) * day
        n = rng.randint(6, 14)
        if kind == "clusters":
            own = [i for i in range(items) if i % 6 == u % 6]
            bought = rng.sample(own, k=min(n, len(own)))
        else:
            weights = [1.0 / (i + 1) for i in range(items)]
            bought = []
            while len(bought) < n:
                i = rng.choices(range(items), weights)[0]
                if i not in bought:
                    bought.append(i)
        for j, i in enumerate(bought):
            f.write(f"user{u},item{i},{rng.randint(1, 3)},{start + j * 2 * day}\n")
