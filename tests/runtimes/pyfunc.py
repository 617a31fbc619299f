#!/usr/bin/python3.11
"""A FaaS-like Python function for cxlfork's real-runtime tests.

At start it imports real stdlib modules (C extensions included: _sqlite3,
_hashlib/OpenSSL, _decimal, zlib, _json, _random...) and builds ~48 MiB of
warm state, deterministically (fixed seeds):
  - a dict of str -> tuple,
  - a list of floats,
  - a bytes blob,
  - an in-memory sqlite database (customers, orders, an index, a view),
then prints "ready <pid>" and waits for requests forever. It does not know
whether it is the original or a clone: a clone restored from a checkpoint
taken while it waits simply goes on waiting.

A request is one SIGUSR1. Request n (counted per process from 1) computes
a digest over the whole warm state (dict lookups and a pass over all its
values, the floats' exact sum, a hash of the blob, a SQL aggregate with a
join, the decimal context's precision), records the request in the state
(so request n+1 depends on request n having been served), and appends
"result <n> <hexdigest>" to RESULT_DIR/<pid>.result (opened and closed per
request; RESULT_DIR is $RT_DIR or /tmp/rt) and to stdout. The original and
any clone give the same digest for the same request number.

  pyfunc.py [MIB]     warm state size in MiB (default 48, or $PYFUNC_MIB)

A SIGUSR2 makes it fork() (make bench's local-fork peer,
bench/faas_bench.c): the child goes on serving, as its parent does; the
parent writes "<child pid> <microseconds in os.fork()>" to
RESULT_DIR/fork-<parent pid> (whole, by a rename).

With $PYFUNC_THREADS=N (pythreads.py sets 4) it is multi-threaded the way
Python services are: a concurrent.futures pool of N worker threads, all
started before "ready" and idle (blocked in futex waits) between
requests, a ticker thread in a sleep loop and a thread that computes in
short bursts. A request is then computed by the pool (the digest in one
worker, N slices of the blob hashed by the others) and the digest also
covers the process's thread count (/proc/self/task) and whether the
ticker ran since the previous request: a clone that lost a thread, or
whose threads do not run, does not answer, or answers differently.
"""
import collections
import decimal
import hashlib
import json
import math
import os
import random
import re
import signal
import sqlite3
import sys
import time
import zlib

SEED = 20250520
RESULT_DIR = os.environ.get("RT_DIR", "/tmp/rt")
MIB = float(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PYFUNC_MIB", "48"))
THREADS = int(os.environ.get("PYFUNC_THREADS", "0"))

# Share of the state (about): dict 50%, floats 15%, blob 20%, sqlite 20%
# (bytes per item measured with python3.11).
N_KEYS = int(MIB * 1024 * 1024 * 0.50 / 330)
N_FLOATS = int(MIB * 1024 * 1024 * 0.15 / 40)
BLOB_BYTES = int(MIB * 1024 * 1024 * 0.20)
N_ORDERS = int(MIB * 1024 * 1024 * 0.20 / 160)
N_CUSTOMERS = max(N_ORDERS // 8, 16)
REGIONS = ("north", "south", "east", "west", "centre")
WORD = re.compile(r"[a-z]+-(\d+)-([a-z]{3})")


def build_state():
    rng = random.Random(SEED)
    letters = "abcdefghijklmnopqrstuvwxyz"
    table = {}
    for i in range(N_KEYS):
        tag = "".join(rng.choice(letters) for _ in range(3))
        key = f"item-{i}-{tag}"
        table[key] = (i, rng.random(), f"{tag}:{rng.getrandbits(64):016x}", i % 97)
    floats = [rng.uniform(-1e6, 1e6) for _ in range(N_FLOATS)]
    blob = rng.randbytes(BLOB_BYTES)

    db = sqlite3.connect(":memory:", check_same_thread=False)
    db.executescript("""
        CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, region TEXT);
        CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER REFERENCES customers(id),
                             day INTEGER, amount INTEGER, note TEXT);
        CREATE TABLE requests (n INTEGER PRIMARY KEY, digest TEXT);
        CREATE INDEX orders_by_customer ON orders(customer, day);
        CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 9000;
    """)
    db.executemany("INSERT INTO customers VALUES (?, ?, ?)",
                   ((c, f"customer-{c}", REGIONS[rng.randrange(len(REGIONS))]) for c in range(N_CUSTOMERS)))
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
                   ((o, rng.randrange(N_CUSTOMERS), rng.randrange(365), rng.randrange(10000),
                     f"note {rng.getrandbits(256):064x} {rng.getrandbits(128):032x}") for o in range(N_ORDERS)))
    db.commit()

    decimal.getcontext().prec = 42
    decimal.getcontext().rounding = decimal.ROUND_HALF_EVEN
    config = json.loads(json.dumps({"seed": SEED, "regions": REGIONS, "mib": MIB}))
    counters = collections.Counter(v[3] for v in table.values())
    return {"table": table, "floats": floats, "blob": blob, "db": db, "config": config,
            "counters": counters, "rng": rng, "keys": list(table)}


def answer(state, n):
    """The digest of request n: a function of the whole warm state."""
    h = hashlib.sha256(f"request {n}".encode())
    table, keys, rng = state["table"], state["keys"], state["rng"]
    # Lookups (keys chosen by the state's own generator, which moves on),
    # a regex over each, and a pass over every value.
    for _ in range(2000):
        k = keys[rng.randrange(len(keys))]
        m = WORD.fullmatch(k)  # no match for a request's key (hex digits)
        h.update(repr((k, table[k]) + (m.groups() if m else ())).encode())
    h.update(repr(sum(v[0] * v[3] for v in table.values())).encode())
    h.update(repr(math.fsum(state["floats"])).encode())
    h.update(hashlib.sha256(state["blob"]).digest())
    h.update(zlib.crc32(state["blob"]).to_bytes(4, "little"))
    rows = state["db"].execute("""
        SELECT c.region, COUNT(*), SUM(o.amount), MAX(o.note)
        FROM orders o JOIN customers c ON o.customer = c.id
        WHERE o.day % 7 = ? GROUP BY c.region ORDER BY c.region""", (n % 7,)).fetchall()
    h.update(repr(rows).encode())
    h.update(repr(state["db"].execute("SELECT COUNT(*), SUM(amount) FROM big_orders").fetchone()).encode())
    h.update(repr(state["db"].execute("SELECT n, digest FROM requests ORDER BY n").fetchall()).encode())
    total = decimal.Decimal(sum(r[2] for r in rows))
    h.update(str((total / 7).sqrt()).encode())  # 42 digits: the context survived
    h.update(repr(sorted(state["counters"].most_common(5))).encode())
    h.update(json.dumps(state["config"], sort_keys=True).encode())
    digest = h.hexdigest()
    # The request becomes part of the state.
    state["db"].execute("INSERT INTO requests VALUES (?, ?)", (n, digest))
    table[f"request-{n}-{digest[:3]}"] = (n, 0.0, digest, n % 97)
    keys.append(f"request-{n}-{digest[:3]}")
    return digest


def rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Threads:
    """The worker pool and the background threads of PYFUNC_THREADS."""

    def __init__(self, n):
        import concurrent.futures
        import threading
        import time
        self.n, self.ticks, self.last_ticks, self.bursts = n, 0, 0, 0
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=n, thread_name_prefix="pyfunc-worker")
        # Every worker started now (each task holds its worker until all
        # have started), so that all exist, idle, at the checkpoint.
        barrier = threading.Barrier(n + 1)
        starts = [self.pool.submit(barrier.wait) for _ in range(n)]
        barrier.wait()
        for f in starts:
            f.result()

        def tick():
            while True:
                time.sleep(0.05)
                self.ticks += 1

        def burst():
            while True:
                hashlib.sha256(b"x" * 4096).digest()
                self.bursts += 1
                time.sleep(0.01)

        threading.Thread(target=tick, name="pyfunc-ticker", daemon=True).start()
        threading.Thread(target=burst, name="pyfunc-burst", daemon=True).start()

    def answer(self, state, n):
        blob, k = state["blob"], self.n
        step = len(blob) // k
        parts = [self.pool.submit(lambda i: hashlib.sha256(blob[i * step:(i + 1) * step]).hexdigest(), i)
                 for i in range(k)]
        digest = self.pool.submit(answer, state, n).result()
        ticked = self.ticks > self.last_ticks
        self.last_ticks = self.ticks
        tasks = len(os.listdir("/proc/self/task"))
        h = hashlib.sha256(digest.encode())
        for p in parts:
            h.update(p.result().encode())
        h.update(repr((tasks, ticked)).encode())
        return h.hexdigest()


def fork_for_bench():
    parent = os.getpid()
    # The children are killed by the bench: reaped at once, none left as
    # a zombie (CRIU would dump and restore them with their parent).
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    t0 = time.monotonic()
    child = os.fork()
    if child == 0:
        return
    us = (time.monotonic() - t0) * 1e6
    path = os.path.join(RESULT_DIR, f"fork-{parent}")
    with open(path + ".tmp", "w") as f:
        f.write(f"{child} {us:.1f}\n")
    os.rename(path + ".tmp", path)


def main():
    state = build_state()
    threads = Threads(THREADS) if THREADS > 0 else None
    pending = [0]

    def on_usr1(signum, frame):  # only if SIGUSR1 is not blocked (see below)
        pending[0] += 1

    signal.signal(signal.SIGUSR1, on_usr1)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})
    print(f"# pyfunc: {len(state['table'])} keys, {len(state['floats'])} floats, "
          f"{len(state['blob']) >> 20} MiB blob, {N_ORDERS} orders; rss {rss_kib() >> 10} MiB; "
          f"{len(os.listdir('/proc/self/task'))} threads", flush=True)
    print(f"ready {os.getpid()}", flush=True)
    served = 0
    while True:
        # SIGUSR1 stays blocked: one is taken here, none is lost between the
        # check and the wait. The timeout only bounds how long a request
        # counted by the handler (mask not blocked) waits.
        sig = signal.sigtimedwait({signal.SIGUSR1, signal.SIGUSR2}, 1.0)
        if sig is not None and sig.si_signo == signal.SIGUSR2:
            fork_for_bench()
        elif sig is not None:
            pending[0] += 1
        while pending[0] > 0:
            pending[0] -= 1
            served += 1
            digest = threads.answer(state, served) if threads else answer(state, served)
            line = f"result {served} {digest}"
            with open(os.path.join(RESULT_DIR, f"{os.getpid()}.result"), "a") as f:
                f.write(line + "\n")
            print(line, flush=True)


if __name__ == "__main__":
    main()
