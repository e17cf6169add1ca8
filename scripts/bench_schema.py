#!/usr/bin/env python3
"""Benchmark: the gateway's hot queries against the real schema at a million tenants.

Builds a database from migrations/*.sql, loads N tenants (default 1,000,000) with one queued job each
(30 % due now), events and webhook tokens, then times each query the gateway runs on a hot path and prints
its query plan, so a missing index shows up as a SCAN. Prints numbers; asserts nothing.

    python3 scripts/bench_schema.py [N]
"""
import hashlib
import os
import random
import sqlite3
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
path = os.path.join(tempfile.mkdtemp(prefix="gw-bench-"), "gateway.sqlite")
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
for name in sorted(os.listdir(os.path.join(root, "migrations"))):
    if name.endswith(".sql"):
        db.executescript(open(os.path.join(root, "migrations", name)).read())

now = 1_800_000_000.0
started = time.perf_counter()
db.execute("BEGIN")
rows, jobs, events = [], [], []
for i in range(N):
    tid = "ten_%026d" % i
    provider = "wrapp" if i % 2 else "magnifinance"
    state = random.choice(["pending", "action_required", "action_required", "active", "active", "active", "failed"])
    token_hash = hashlib.sha256(b"tok-%d" % i).digest()
    rows.append((tid, provider, "ext-%d" % i, state, '{"email":"c%d@example.com"}' % i, "{}", now, now, now, token_hash))
    jobs.append((tid, "check", now + (-5 if i % 10 < 3 else 3600 + i % 86400), now))
    events.append(("evt_%026d" % i, tid, "tenant.created", "api", now, "{}"))
    if len(rows) == 50_000:
        db.executemany("INSERT INTO tenants (id, provider, external_id, state, profile, metadata, created_at, updated_at, state_changed_at, webhook_token_hash) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
        db.executemany("INSERT INTO jobs (tenant_id, kind, run_at, created_at) VALUES (?,?,?,?)", jobs)
        db.executemany("INSERT INTO tenant_events (id, tenant_id, type, source, created_at, tenant) VALUES (?,?,?,?,?,?)", events)
        rows, jobs, events = [], [], []
if rows:
    db.executemany("INSERT INTO tenants (id, provider, external_id, state, profile, metadata, created_at, updated_at, state_changed_at, webhook_token_hash) VALUES (?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO jobs (tenant_id, kind, run_at, created_at) VALUES (?,?,?,?)", jobs)
    db.executemany("INSERT INTO tenant_events (id, tenant_id, type, source, created_at, tenant) VALUES (?,?,?,?,?,?)", events)
db.execute("COMMIT")
db.execute("ANALYZE")
print(f"loaded {N:,} tenants, jobs and events in {time.perf_counter() - started:.1f} s; file {os.path.getsize(path) / 1e6:.0f} MB")

probe = N // 2
queries = [
    ("tenant by id", "SELECT * FROM tenants WHERE id = ?", ("ten_%026d" % probe,)),
    ("tenant by webhook token", "SELECT id FROM tenants WHERE webhook_token_hash = ?", (hashlib.sha256(b"tok-%d" % probe).digest(),)),
    ("natural key (provider, external_id)", "SELECT * FROM tenants WHERE provider = ? AND external_id = ? AND state <> 'offboarded'", ("wrapp", "ext-%d" % (probe | 1))),
    ("by external_id", "SELECT * FROM tenants WHERE external_id = ? ORDER BY id DESC LIMIT 21", ("ext-%d" % probe,)),
    ("newest page", "SELECT * FROM tenants ORDER BY id DESC LIMIT 21", ()),
    ("page by state", "SELECT * FROM tenants WHERE state = ? AND id < ? ORDER BY id DESC LIMIT 21", ("failed", "ten_%026d" % probe)),
    ("page by provider and state", "SELECT * FROM tenants WHERE provider = ? AND state = ? ORDER BY id DESC LIMIT 21", ("wrapp", "pending")),
    ("tenant's queued work", "SELECT attempts FROM jobs WHERE tenant_id = ? AND kind IN ('submit', 'check')", ("ten_%026d" % probe,)),
    ("tenant's history", "SELECT e.*, b.tenant AS base_tenant FROM tenant_events e LEFT JOIN tenant_events b ON b.seq = e.base_seq"
     " WHERE e.seq > 0 AND e.tenant_id = ? ORDER BY e.seq LIMIT 101", ("ten_%026d" % probe,)),
]
print(f"\n{'query':38} {'median ms':>10} {'p99 ms':>8}  plan")
for label, sql, args in queries:
    samples = []
    for _ in range(200):
        t = time.perf_counter()
        db.execute(sql, args).fetchall()
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    plan = "; ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, args))
    print(f"{label:38} {samples[100]:10.3f} {samples[198]:8.3f}  {plan}")

# The worker's claim: 16 due items, leased, in one write transaction, repeated until the due ones are gone.
claim = """UPDATE jobs SET run_at = ?1, lease_until = ?1, attempts = attempts + 1
           WHERE id IN (SELECT id FROM jobs WHERE run_at <= ?2 ORDER BY run_at LIMIT ?3)
           RETURNING id, tenant_id, kind, attempts, inbox_id"""
samples, claimed = [], 0
while claimed < 20_000:
    t = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    got = db.execute(claim, (now + 120, now, 16)).fetchall()
    db.execute("COMMIT")
    samples.append((time.perf_counter() - t) * 1000)
    claimed += len(got)
samples.sort()
plan = "; ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE run_at <= ? ORDER BY run_at LIMIT 16", (now,)))
print(f"{'claim 16 due jobs (write txn)':38} {samples[len(samples) // 2]:10.3f} {samples[int(len(samples) * 0.99)]:8.3f}  {plan}")
print(f"\nclaimed {claimed:,} jobs in {len(samples):,} claims")
