#!/usr/bin/env python3
"""Generates Redis commands (RESP, for `redis-cli --pipe`) for tests.

  redis-data.py populate KEYS SEED   KEYS keys of mixed types in db 0
                                     (strings, hashes, lists, sets, sorted
                                     sets, 10% with a TTL) and KEYS/100 in db 1
  redis-data.py change KEYS SEED PCT changes PCT% of the keys written by
                                     `populate KEYS`, chosen at random, in place

Deterministic for a given seed. TTLs are a day or more, so no key expires
during a test.
"""
import random
import sys

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima "
         "mike november oscar papa quebec romeo sierra tango uniform victor whiskey "
         "xray yankee zulu redis cairn backup stream chunk snapshot replica").split()

out = sys.stdout.buffer


def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        if not isinstance(a, bytes):
            a = str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    out.write(b"".join(parts))


def text(rng, lo, hi):
    n = rng.randint(lo, hi)
    s = []
    size = 0
    while size < n:
        w = rng.choice(WORDS) + str(rng.randint(0, 999))
        s.append(w)
        size += len(w) + 1
    return " ".join(s)[:n]


def kind_of(i):
    # 40% strings, 15% hashes, 15% lists, 10% sets, 10% sorted sets, 10% strings with TTL
    r = i % 20
    if r < 8:
        return "string"
    if r < 11:
        return "hash"
    if r < 14:
        return "list"
    if r < 16:
        return "set"
    if r < 18:
        return "zset"
    return "ttl"


def write_key(rng, i, version=0):
    key = "k:%s:%06d" % (kind_of(i), i)
    kind = kind_of(i)
    if kind == "string":
        cmd("SET", key, text(rng, 100, 900))
    elif kind == "ttl":
        cmd("SET", key, text(rng, 50, 400), "EX", 86400 + i)
    elif kind == "hash":
        args = []
        for f in range(rng.randint(4, 12)):
            args += ["f%d" % f, text(rng, 8, 60)]
        cmd("HSET", key, *args)
        if i % 7 == 0:
            cmd("EXPIRE", key, 172800 + i)
    elif kind == "list":
        cmd("RPUSH", key, *[text(rng, 8, 60) for _ in range(rng.randint(4, 20))])
    elif kind == "set":
        cmd("SADD", key, *["m%d" % rng.randint(0, 100000) for _ in range(rng.randint(3, 15))])
    else:
        args = []
        for _ in range(rng.randint(3, 15)):
            args += [str(rng.randint(0, 10000) / 10.0), "m%d" % rng.randint(0, 100000)]
        cmd("ZADD", key, *args)


def change_key(rng, i):
    key = "k:%s:%06d" % (kind_of(i), i)
    kind = kind_of(i)
    if kind == "string":
        cmd("SET", key, text(rng, 100, 900))
    elif kind == "ttl":
        cmd("SET", key, text(rng, 50, 400), "KEEPTTL")
    elif kind == "hash":
        cmd("HSET", key, "f0", text(rng, 8, 60))
    elif kind == "list":
        cmd("LSET", key, 0, text(rng, 8, 60))
    elif kind == "set":
        cmd("SADD", key, "changed%d" % rng.randint(0, 10**9))
    else:
        cmd("ZADD", key, str(rng.randint(0, 10000) / 10.0), "m-changed")


def main():
    what, keys, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    rng = random.Random(seed)
    if what == "populate":
        for i in range(keys):
            write_key(rng, i)
        cmd("SELECT", 1)
        for i in range(keys // 100):
            cmd("SET", "db1:%d" % i, text(rng, 10, 100))
        cmd("SELECT", 0)
    elif what == "change":
        pct = float(sys.argv[4])
        for i in rng.sample(range(keys), int(keys * pct / 100)):
            change_key(rng, i)
    else:
        sys.exit("unknown action " + what)


main()
