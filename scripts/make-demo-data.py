#!/usr/bin/env python3
"""Builds the bundled demo data set (demo/online-retail/) from the UCI
Online Retail copy in ../shared/data/online-retail (CC BY 4.0).

- interactions.csv.gz: user,item,weight with one row per (customer, product)
  pair, weight = total quantity bought over the year (the sum of the
  original invoice lines; the timestamp column is dropped). Rows sorted by
  user then item, so the file compresses well and diffs are stable.
- items.csv: item,title,category,group. title is the data set's own product
  description; category is DERIVED here from keywords of the title (the
  original has no categories) so that the demo can show CATEGORY filters
  and preferences. Products matching no keyword have an empty category.
  group (the product family, e.g. EDWARDIAN PARASOL for EDWARDIAN PARASOL
  NATURAL / PINK / BLACK / RED) is DERIVED from the title too, see family():
  the title without its colour and size words; only families of at least
  two products are kept, every other product has an empty group.

Standard library only. Usage: python3 scripts/make-demo-data.py [SRC] [DST]
"""
import csv
import gzip
import os
import re
import sys
from collections import defaultdict

SRC = sys.argv[1] if len(sys.argv) > 1 else "../shared/data/online-retail"
DST = sys.argv[2] if len(sys.argv) > 2 else "demo/online-retail"

# First matching rule wins; order from specific to general.
CATEGORY_KEYWORDS = [
    ("christmas", ["CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE"]),
    ("bags", ["BAG", "TOTE", "PURSE", "SHOPPER"]),
    ("candles-and-lights", ["CANDLE", "T-LIGHT", "TEALIGHT", "LANTERN", "LIGHT", "LAMP"]),
    ("kitchen", ["MUG", "CUP", "PLATE", "BOWL", "TEAPOT", "CAKE", "BAKING", "JAR", "TIN",
                 "LUNCH BOX", "KITCHEN", "NAPKIN", "CUTLERY", "BOTTLE", "TRAY", "COASTER"]),
    ("stationery", ["CARD", "PAPER", "NOTEBOOK", "PENCIL", "PEN ", "WRAP", "STICKER",
                    "ENVELOPE", "TAPE", "CALENDAR", "BOOK"]),
    ("home-decor", ["FRAME", "CLOCK", "SIGN", "MIRROR", "CUSHION", "DOORSTOP", "HOOK",
                    "HEART", "GARLAND", "BUNTING", "WALL", "DOOR", "DECORATION", "VASE"]),
    ("toys-and-games", ["TOY", "GAME", "DOLL", "PUZZLE", "DOMINO", "SPACEBOY", "BALLOON",
                        "SKIPPING", "JIGSAW"]),
    ("garden", ["GARDEN", "PLANT", "WATERING", "BIRD", "FLOWER POT", "HERB"]),
    ("jewellery-and-accessories", ["NECKLACE", "BRACELET", "EARRING", "RING ", "HAIR",
                                   "UMBRELLA", "SCARF", "GLOVES", "HANDBAG", "BROOCH"]),
    ("storage", ["BOX", "BASKET", "DRAWER", "STORAGE", "CASE", "HOLDER"]),
]


# Words that name a variant of a product rather than the product: colours
# and sizes. Whole words only (the title is split into words of letters,
# digits and & ' + . / -). ROSE is not in the list: in these titles it is a
# print as often as a colour ("ROSE DU SUD", "VINTAGE ROSE").
COLOUR_WORDS = set("""BLACK WHITE RED PINK BLUE GREEN YELLOW PURPLE ORANGE BROWN GREY GRAY
IVORY CREAM NATURAL SILVER GOLD GOLDEN CHOCOLATE TURQUOISE LILAC AQUA TEAL RASPBERRY
BEIGE COPPER CLEAR MAGENTA FUSCHIA FUCHSIA LIME MINT NAVY CHARCOAL AMBER VIOLET
BRONZE""".split())
SIZE_WORDS = set("SMALL MEDIUM LARGE MINI SML MED LGE".split())


def family_key(title):
    words = re.findall(r"[A-Z0-9&'+./-]+", title.upper())
    return " ".join(w for w in words if w not in COLOUR_WORDS and w not in SIZE_WORDS)


def families(titles):
    """item -> family name for families of >= 2 products (others: no entry)."""
    members = defaultdict(list)
    for item, title in titles.items():
        key = family_key(title)
        if key:
            members[key].append(item)
    return {i: key for key, items in members.items() if len(items) >= 2 for i in items}


def category(title):
    t = " " + title.upper() + " "
    for name, words in CATEGORY_KEYWORDS:
        if any(w in t for w in words):
            return name
    return ""


def main():
    weight = defaultdict(int)
    with open(os.path.join(SRC, "interactions.csv"), newline="") as f:
        for row in csv.DictReader(f):
            weight[(row["user"], row["item"])] += int(row["weight"])
    os.makedirs(DST, exist_ok=True)
    # mtime=0: the same input gives the same bytes.
    with open(os.path.join(DST, "interactions.csv.gz"), "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
            gz.write(b"user,item,weight\n")
            for (u, i) in sorted(weight, key=lambda k: (int(k[0]), k[1])):
                gz.write(f"{u},{i},{weight[(u, i)]}\n".encode())
    items = {}
    with open(os.path.join(SRC, "items.csv"), newline="") as f:
        for row in csv.DictReader(f):
            items[row["item"]] = row["title"]
    used = {i for (_, i) in weight}
    group = families({i: items.get(i, "") for i in used})
    with open(os.path.join(DST, "items.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["item", "title", "category", "group"])
        for item in sorted(used):
            title = items.get(item, "")
            w.writerow([item, title, category(title), group.get(item, "")])
    cats = defaultdict(int)
    for item in used:
        cats[category(items.get(item, ""))] += 1
    print(f"{len(weight)} pairs, {len({u for (u, _) in weight})} users, {len(used)} items;"
          f" categories: {dict(sorted(cats.items()))};"
          f" {len(set(group.values()))} families of {len(group)} items")


main()
