#!/usr/bin/python3
"""A storefront talking to recd and Redis, with Debian's python3-redis.

What a shop's backend does, in the order a visit happens:

  1. show "recommended for you" (RECOMMEND ... COUNT n WITHSCORES);
  2. record a purchase: through recd (FEEDBACK) or straight into Redis
     (ZINCRBY recd:hist:<user> 1 <item>) -- recd reads the history live, so
     the bought item is gone from the very next answer;
  3. store a stated preference (HSET recd:pref:<user> cat:kitchen 0.5);
  4. mark an item out of stock (SADD recd:unavailable <item>): it disappears
     from every answer within recd's unavailable-refresh-ms;
  5. re-order a page of candidates for the customer (RANK), show "customers
     also bought" (SIMILAR);
  6. handle errors: an error reply is a redis.ResponseError; recd being
     unreachable is a ConnectionError/TimeoutError -> show bestsellers.

Every step asserts the behaviour it demonstrates, so CI runs this file
against the bundled demo data (tests/cli/test_examples.sh). The changes it
makes to the customer's keys are undone at the end, so it can run again.

usage: /usr/bin/python3 examples/python/storefront.py [--recd-port 7070]
           [--redis-port 6379] [--prefix recd:] [--customer 17850]
           [--refresh-ms 2000]
"""
import argparse
import socket
import sys
import time

import redis

# Shown when recd cannot be reached: a real shop would cache its bestsellers.
BESTSELLERS = ["85123A", "22423", "85099B"]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recd-host", default="127.0.0.1")
    p.add_argument("--recd-port", type=int, default=7070)
    p.add_argument("--redis-host", default="127.0.0.1")
    p.add_argument("--redis-port", type=int, default=6379)
    p.add_argument("--prefix", default="recd:", help="recd's key-prefix")
    p.add_argument("--customer", default="17850")
    p.add_argument("--refresh-ms", type=int, default=2000,
                   help="recd's unavailable-refresh-ms")
    return p.parse_args()


def pairs(flat):
    """[id, score, id, score, ...] -> [(id, float(score)), ...]"""
    return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]


def recommend(recd, user, count=10, *options):
    return recd.execute_command("RECOMMEND", user, "COUNT", count, *options)


def recommend_or_bestsellers(recd, user, count):
    """What a page handler calls: never lets recd's absence break the page."""
    try:
        return recommend(recd, user, count), "recd"
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
        print(f"   recd unreachable ({e.__class__.__name__}): showing bestsellers")
        return BESTSELLERS[:count], "fallback"


def main():
    a = parse_args()
    # Two connections: recd for answers, Redis for the data recd reads.
    # Short timeouts: a product page must not wait on recommendations.
    recd = redis.Redis(host=a.recd_host, port=a.recd_port, decode_responses=True,
                       socket_timeout=2, socket_connect_timeout=2)
    db = redis.Redis(host=a.redis_host, port=a.redis_port, decode_responses=True)
    hist, pref = f"{a.prefix}hist:{a.customer}", f"{a.prefix}pref:{a.customer}"
    unavailable = f"{a.prefix}unavailable"
    title = lambda item: db.hget(f"{a.prefix}item:{item}", "title") or "?"
    category = lambda item: db.hget(f"{a.prefix}item:{item}", "category") or ""
    user = a.customer
    undo = []  # how to put the customer's keys back as they were

    try:
        # 1. Recommendations with scores.
        recs = pairs(recommend(recd, user, 5, "WITHSCORES"))
        assert len(recs) == 5, recs
        assert all(recs[i][1] >= recs[i + 1][1] for i in range(4)), "not best first"
        print(f"RECOMMEND {user} COUNT 5 WITHSCORES")
        for item, score in recs:
            print(f"   {item:8} {score:7.4f}  {title(item)}")

        # 2. Two purchases: one through recd's FEEDBACK, one written straight
        #    into Redis as a storefront's order pipeline might.
        bought_fb, bought_raw = recs[0][0], recs[1][0]
        for item in (bought_fb, bought_raw):
            old = db.zscore(hist, item)
            undo.append(("hist", item, old))
        weight = recd.execute_command("FEEDBACK", user, bought_fb)  # WEIGHT 1
        print(f"FEEDBACK {user} {bought_fb}  -> accumulated weight {weight}")
        db.zincrby(hist, 1, bought_raw)
        print(f"ZINCRBY {hist} 1 {bought_raw}  (straight into Redis)")
        after = recommend(recd, user, 50)
        assert bought_fb not in after and bought_raw not in after, after
        print(f"   both bought items are gone from the next RECOMMEND: {after[:5]}")

        # 3. A stated preference: kitchen items rise. Adding a bonus to one
        #    category can only move its items up, so the top 10 cannot hold
        #    fewer of them than before.
        old_pref = db.hget(pref, "cat:kitchen")
        undo.append(("pref", "cat:kitchen", old_pref))
        top = recommend(recd, user, 10)
        db.hset(pref, "cat:kitchen", 0.5)
        top_pref = recommend(recd, user, 10)
        n0 = sum(category(i) == "kitchen" for i in top)
        n1 = sum(category(i) == "kitchen" for i in top_pref)
        print(f"HSET {pref} cat:kitchen 0.5  -> kitchen items in the top 10: {n0} -> {n1}")
        assert n1 >= n0, (top, top_pref)
        kitchen = recommend(recd, user, 3, "CATEGORY", "kitchen")
        assert all(category(i) == "kitchen" for i in kitchen), kitchen
        print(f"RECOMMEND {user} COUNT 3 CATEGORY kitchen -> "
              + ", ".join(f"{i} {title(i)}" for i in kitchen))

        # 4. Out of stock: the current favourite. recd refreshes its copy of
        #    the set every refresh-ms, never on the request path; wait for it.
        gone = top_pref[0]
        neighbour = recd.execute_command("SIMILAR", gone, "COUNT", 1)[0]
        was_similar = gone in recd.execute_command("SIMILAR", neighbour, "COUNT", 100)
        undo.append(("unavailable", gone, db.sismember(unavailable, gone)))
        db.sadd(unavailable, gone)
        print(f"SADD {unavailable} {gone}  ({title(gone)})")
        deadline = time.monotonic() + 2 * a.refresh_ms / 1000 + 2
        while gone in recommend(recd, user, 100):
            assert time.monotonic() < deadline, f"{gone} still recommended"
            time.sleep(0.05)
        for _ in range(5):  # and it stays out, from every command
            assert gone not in recommend(recd, user, 100)
            assert gone not in recd.execute_command("SIMILAR", neighbour, "COUNT", 100)
            time.sleep(a.refresh_ms / 1000 / 4)
        print(f"   {gone} no longer appears in RECOMMEND"
              + (" or SIMILAR" if was_similar else ""))

        # 5. RANK re-orders the shop's own candidates (say, one search
        #    result page); unknown ids are not errors, they go last.
        page = [top[5], top[2], "NO-SUCH-ITEM", top[8]]
        ranked = recd.execute_command("RANK", user, *page)
        assert sorted(ranked) == sorted(page) and ranked[-1] == "NO-SUCH-ITEM", ranked
        print(f"RANK {user} {' '.join(page)} -> {' '.join(ranked)}")
        product = "85123A"
        similar = pairs(recd.execute_command("SIMILAR", product, "COUNT", 3, "WITHSCORES"))
        assert len(similar) == 3 and product not in [i for i, _ in similar], similar
        print(f"SIMILAR {product} COUNT 3 WITHSCORES  ({title(product)})")
        for item, score in similar:
            print(f"   {item:8} {score:6.3f}  {title(item)}")
        assert recd.execute_command("SIMILAR", "NO-SUCH-ITEM") == []

        # 6. Errors. An error reply raises ResponseError (and the connection
        #    stays usable); an unreachable recd degrades to bestsellers.
        try:
            recommend(recd, user, 100000)
            raise AssertionError("COUNT 100000 was accepted")
        except redis.exceptions.ResponseError as e:
            print(f"RECOMMEND {user} COUNT 100000 -> error: {e}")
            assert "COUNT must be" in str(e)
        assert recd.ping()
        items, source = recommend_or_bestsellers(recd, user, 3)
        assert source == "recd" and len(items) == 3
        with socket.socket() as s:  # a port where nothing listens
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        down = redis.Redis(port=closed_port, socket_connect_timeout=1, decode_responses=True)
        items, source = recommend_or_bestsellers(down, user, 3)
        assert source == "fallback" and items == BESTSELLERS[:3]
    finally:
        # Put the customer's keys back: this is a demo, not a real purchase.
        for kind, field, old in reversed(undo):
            if kind == "hist":
                if old is None:
                    db.zrem(hist, field)
                else:
                    db.zadd(hist, {field: old})
            elif kind == "pref":
                if old is None:
                    db.hdel(pref, field)
                else:
                    db.hset(pref, field, old)
            elif kind == "unavailable" and not old:
                db.srem(unavailable, field)
    print("python storefront example: all assertions passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
