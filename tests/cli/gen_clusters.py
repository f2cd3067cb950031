#!/usr/bin/env python3
"""Writes a synthetic purchase log with planted structure for the CLI tests.

Users and items fall into C clusters; a user buys only items of their own
cluster, item popularity is skewed within a cluster. A recommender that
learns anything must beat popularity by a wide margin on held-out items.
usage: gen_clusters.py OUT_INTERACTIONS OUT_ITEMS [users items clusters seed]
"""
import random
import sys

out, items_out = sys.argv[1], sys.argv[2]
users, items, clusters, seed = (int(x) for x in (sys.argv[3:7] or (300, 120, 6, 1)))
rng = random.Random(seed)
with open(out, "w") as f:
    f.write("user,item,weight,timestamp\n")
    for u in range(users):
        own = [i for i in range(items) if i % clusters == u % clusters]
        for i in rng.sample(own, k=max(2, len(own) // 3)):
            f.write(f"user{u},item{i},{rng.randint(1, 4)},{1600000000 + u}\n")
with open(items_out, "w") as f:
    f.write("item,title,category\n")
    for i in range(items):
        f.write(f'item{i},"Item {i}, cluster {i % clusters}",cat{i % clusters}\n')
