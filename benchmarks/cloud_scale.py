"""Telemetry ingest and API p99 of 1, 2 and 4 cloud replicas on PostgreSQL, side by side.

    .venv/bin/python benchmarks/cloud_scale.py [--quick] [--replicas 1,2,4]
        [--sites 100,1000,5000] [--window 8] [--batch 500] [--db URL]

For each replica count: a fresh PostgreSQL schema (dropped afterwards), that many real
`tierwise cloud` processes behind HAProxy (`tierwise.up.balancer`, as `tierwise up
--cloud-replicas N` starts them) and a token per simulated site. For each fleet size, load
generators (separate processes, `--generators`) upload gzip telemetry batches of `--batch`
prediction events (the body an agent records per answer) as the sites, round-robin, each
site with its own token and rising seq, over keep-alive connections, one batch in flight
per connection; meanwhile one connection asks `GET /v1/sites/{site}/deployment` every
20 ms. Printed per cell: events/s the acks accepted, p50/p99 of that light call, and the
CPU (cores) used by the replicas, PostgreSQL, HAProxy, the load generators and everything
else on the machine during the window, read from /proc. The bottleneck named is the part
that saturates: one replica's core (a Python process serves on one), the machine's cores,
PostgreSQL or the balancer. CPU microseconds per event of each part give the prediction
for a machine with more cores (docs/cloud.md).

The generators stay cheap: a batch is a JSON template with the seq and time filled in,
compressed at gzip level 1 (the agent's level), sent over raw asyncio streams.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' shared helpers

import sqlalchemy as sa  # noqa: E402

from tierwise.up.balancer import start_cloud_replicas  # noqa: E402
from tierwise.up.components import Tokens  # noqa: E402
from tierwise.up.processes import Supervisor  # noqa: E402

GOAL_ONE_REPLICA = 20_000  # events/s (issue 14)
PROBE_EVERY_S = 0.02
CLK_TCK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
SATURATED = 0.85  # of a core (one process) or of the machine: counts as saturated


# --- the load generator (a child process) -------------------------------------------------


def _event_template(stream: str) -> list[str]:
    """Event JSON with three holes (seq, ts, latency): body variants like an agent's answers."""
    variants = []
    for i in range(8):
        body = {
            "feature": stream, "answered_by": "edge" if i % 4 else "cloud",
            "model": "digits", "version": 3, "degraded": False, "reason": "",
            "rows": 1, "hard_rows": int(i % 4 == 0), "cloud_rows": int(i % 4 == 0),
            "escalated": i % 4 == 0, "correct": i % 2, "labelled": 1,
        }  # fmt: skip
        fields = json.dumps(body, separators=(",", ":"))[:-1]
        variants.append(
            f'{{"stream":"{stream}","seq":%d,"ts":%.3f,"kind":"prediction","body":'
            f'{fields},"latency_ms":%.3f}}}}'
        )
    return variants


def _gzip(data: bytes) -> bytes:
    compressor = zlib.compressobj(1, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return status, body


async def _generate(config: dict[str, Any]) -> dict[str, Any]:
    host, port = config["host"], config["port"]
    sites: dict[str, str] = config["sites"]  # site: token (only this generator's sites)
    names = list(sites)
    stream, batch = config["stream"], config["batch"]
    variants = _event_template(stream)
    start, end = config["start"], config["end"]  # wall clock: the measured window
    seqs = dict.fromkeys(names, 0)
    accepted = [0]
    acked = [0]  # every ack's accepted count, in the window or not: checked against the table
    failed = [0]
    latencies: list[float] = []
    cursor = [0]
    cpu_at: dict[str, float] = {}

    def next_request() -> bytes:
        site = names[cursor[0] % len(names)]
        cursor[0] += 1
        first = seqs[site]
        seqs[site] = first + batch
        now = time.time()
        events = ",".join(
            variants[s % 8] % (s, now, 2.0 + (s * 7919 % 10_000) / 1000)
            for s in range(first, first + batch)
        )
        body = _gzip(f'{{"events":[{events}]}}'.encode())
        return (
            f"POST /v1/sites/{site}/telemetry HTTP/1.1\r\nHost: cloud\r\n"
            f"Authorization: Bearer {sites[site]}\r\nContent-Type: application/json\r\n"
            f"Content-Encoding: gzip\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def uploader() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while time.time() < end:
            status, answer = await _exchange(reader, writer, next_request())
            if status != 200:
                failed[0] += 1
                continue
            new = json.loads(answer)["accepted"]
            acked[0] += new
            if start <= time.time() <= end:
                accepted[0] += new
        writer.close()

    async def prober() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        i = 0
        while time.time() < end:
            site = names[i % len(names)]
            i += 1
            request = (
                f"GET /v1/sites/{site}/deployment HTTP/1.1\r\nHost: cloud\r\n"
                f"Authorization: Bearer {sites[site]}\r\n\r\n"
            ).encode()
            sent = time.perf_counter()
            status, _ = await _exchange(reader, writer, request)
            took = time.perf_counter() - sent
            if status != 200:
                failed[0] += 1
            elif start <= time.time() <= end:
                latencies.append(took * 1000)
            await asyncio.sleep(PROBE_EVERY_S)
        writer.close()

    async def cpu_marks() -> None:
        await asyncio.sleep(max(0.0, start - time.time()))
        cpu_at["start"] = _own_cpu()
        await asyncio.sleep(max(0.0, end - time.time()))
        cpu_at["end"] = _own_cpu()

    tasks = [uploader() for _ in range(config["connections"])]
    if config["probe"]:
        tasks.append(prober())
    await asyncio.gather(cpu_marks(), *tasks)
    return {
        "accepted": accepted[0],
        "acked": acked[0],
        "failed": failed[0],
        "latencies_ms": latencies,
        "cpu_s": cpu_at["end"] - cpu_at["start"],
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def generator_main() -> None:
    config = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
    print(json.dumps(asyncio.run(_generate(config))))


# --- CPU accounting from /proc --------------------------------------------------------------


def _proc_cpu(pid: int, children: bool = False) -> float:
    """CPU seconds (user + system) of one process so far, with `children` those of its
    children that have exited; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def _postgres_cpu() -> float:
    """CPU seconds of the PostgreSQL server so far: the postmaster with its exited children
    (backends come and go with the replicas' pooled connections) plus those still running."""
    pids = set(_pids_named("postgres"))
    total = 0.0
    for pid in pids:
        parent = _parent(pid)
        if parent not in pids:  # the postmaster
            total += _proc_cpu(pid, children=True)
        else:
            total += _proc_cpu(pid)
    return total


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _machine_busy() -> float:
    """CPU seconds the whole machine spent busy so far (all cores)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLK_TCK


@dataclass
class CpuSample:
    replicas: list[float]
    postgres: float
    balancer: float
    machine: float


def _wal_position(url: str) -> int:
    """Bytes PostgreSQL has written to its write-ahead log so far (all databases)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.exec_driver_sql(
                    "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"
                ).scalar_one()
            )
    finally:
        engine.dispose()


def sample_cpu(replica_pids: list[int], balancer_pid: int) -> CpuSample:
    return CpuSample(
        [_proc_cpu(p) for p in replica_pids],
        _postgres_cpu(),
        _proc_cpu(balancer_pid),
        _machine_busy(),
    )


# --- one cell: N replicas, S sites ----------------------------------------------------------


@dataclass
class Cell:
    replicas: int
    sites: int
    events_per_s: float
    failed: int
    p50_ms: float
    p99_ms: float
    probes: int
    replica_cores: list[float]
    postgres: float
    balancer: float
    generators: float
    other: float
    wal_bytes: int  # PostgreSQL's write-ahead log written during the window
    window_s: float
    acked: int  # events the acks said were new, whole run

    @property
    def wal_per_event(self) -> float:
        return self.wal_bytes / max(self.events_per_s * self.window_s, 1.0)

    @property
    def total(self) -> float:
        return sum(self.replica_cores) + self.postgres + self.balancer + self.generators

    def bottleneck(self) -> str:
        busiest = max(self.replica_cores)
        if self.replicas == 1 and busiest >= SATURATED:
            return "the replica's core"
        if self.total + self.other >= SATURATED * CORES:
            parts = {
                "replicas": sum(self.replica_cores), "PostgreSQL": self.postgres,
                "HAProxy": self.balancer, "load generators": self.generators,
            }  # fmt: skip
            biggest = max(parts, key=lambda k: parts[k])
            return (
                f"{CORES} cores (ours {self.total:.2f} + others {self.other:.2f}; most: {biggest})"
            )
        if self.postgres >= SATURATED:
            return "PostgreSQL"
        if self.balancer >= SATURATED:
            return "HAProxy"
        if busiest >= SATURATED:
            return "a replica's core"
        return "none saturated"


def run_cell(
    url: str, tokens: Tokens, sites: int, args: argparse.Namespace, stream: str,
    replica_pids: list[int], balancer_pid: int, log_dir: Path,
) -> Cell:  # fmt: skip
    host, port = url.removeprefix("http://").split(":")
    names = list(tokens.sites)[:sites]
    warmup = args.warmup
    start = time.time() + warmup + 1.0  # the generators' start-up (imports) comes first
    end = start + args.window
    procs = []
    for g in range(args.generators):
        mine = {s: tokens.sites[s] for s in names[g :: args.generators]}
        config = {
            "host": host, "port": int(port), "sites": mine, "stream": stream,
            "batch": args.batch, "connections": args.connections, "probe": g == 0,
            "start": start, "end": end,
        }  # fmt: skip
        config_file = log_dir / f"generator-{g}.json"
        config_file.write_text(json.dumps(config), encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, __file__, "--generate", str(config_file)],
            stdout=subprocess.PIPE,
            stderr=(log_dir / f"generator-{g}.log").open("ab"),
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        procs.append(proc)
    time.sleep(max(0.0, start - time.time()))
    before, wal_before = sample_cpu(replica_pids, balancer_pid), _wal_position(args.db)
    time.sleep(max(0.0, end - time.time()))
    after, wal_after = sample_cpu(replica_pids, balancer_pid), _wal_position(args.db)
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        if proc.returncode != 0:
            raise SystemExit(f"load generator failed (log: {log_dir}): exit {proc.returncode}")
        results.append(json.loads(out))
    window = end - start
    latencies = sorted(x for r in results for x in r["latencies_ms"])
    replica_cores = [(a - b) / window for a, b in zip(after.replicas, before.replicas, strict=True)]
    postgres = (after.postgres - before.postgres) / window
    balancer = (after.balancer - before.balancer) / window
    generators = sum(r["cpu_s"] for r in results) / window
    machine = (after.machine - before.machine) / window
    ours = sum(replica_cores) + postgres + balancer + generators
    return Cell(
        replicas=len(replica_pids),
        sites=sites,
        events_per_s=sum(r["accepted"] for r in results) / window,
        failed=sum(r["failed"] for r in results),
        p50_ms=statistics.median(latencies) if latencies else float("nan"),
        p99_ms=statistics.quantiles(latencies, n=100)[98] if len(latencies) > 2 else float("nan"),
        probes=len(latencies),
        replica_cores=replica_cores,
        postgres=postgres,
        balancer=balancer,
        generators=generators,
        other=max(0.0, machine - ours),
        wal_bytes=wal_after - wal_before,
        window_s=window,
        acked=sum(r["acked"] for r in results),
    )


def run_replicas(
    n: int, site_counts: list[int], tokens: Tokens, args: argparse.Namespace, work: Path
) -> list[Cell]:
    from tests.package.support import make_keys

    schema = f"tw_cscale_{os.getpid()}_{n}_{random.randrange(10**6)}"
    run_dir = work / f"replicas-{n}"
    run_dir.mkdir()
    keys = make_keys(run_dir)
    cells = []
    try:
        with Supervisor(run_dir / "logs") as sup:
            children, balancer = start_cloud_replicas(
                sup, run_dir, tokens, keys.public, n, args.db, schema
            )
            pids = [c.pid for c in children]
            for i, sites in enumerate(site_counts):
                cell = run_cell(
                    balancer.url, tokens, sites, args, f"cam-{i}", pids, balancer.pid,
                    run_dir / "logs",
                )  # fmt: skip
                sup.check_alive()
                print(_row(cell), flush=True)
                cells.append(cell)
        _check_stored(args.db, schema, sum(c.acked for c in cells))
    finally:
        engine = sa.create_engine(args.db)
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()
    return cells


def _check_stored(url: str, schema: str, acked: int) -> None:
    """Every event an ack called new is in the table, and nothing else: exit 1 if not."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            stored = conn.exec_driver_sql(f"SELECT count(*) FROM {schema}.telemetry").scalar_one()
    finally:
        engine.dispose()
    if stored != acked:
        raise SystemExit(f"{schema}: {stored:,} events stored but {acked:,} acknowledged as new")
    print(f"         stored {stored:,} events = acknowledged as new: nothing lost", flush=True)


HEADER = (
    f"{'replicas':>8} {'sites':>6} {'events/s':>9} {'p50 ms':>7} {'p99 ms':>7} "
    f"{'cloud cores':>15} {'pg':>5} {'lb':>5} {'gen':>5} {'other':>5}  bottleneck"
)


def _row(c: Cell) -> str:
    per = "+".join(f"{x:.2f}" for x in c.replica_cores)
    per = per if len(per) <= 15 else f"{sum(c.replica_cores):.2f} ({c.replicas})"
    failed = f"  ({c.failed} failed)" if c.failed else ""
    return (
        f"{c.replicas:>8} {c.sites:>6} {c.events_per_s:>9,.0f} {c.p50_ms:>7.1f} {c.p99_ms:>7.1f} "
        f"{per:>15} {c.postgres:>5.2f} {c.balancer:>5.2f} {c.generators:>5.2f} {c.other:>5.2f}"
        f"  {c.bottleneck()}{failed}"
    )


def summary(cells: list[Cell]) -> None:
    """Ingest per replica count against one replica, CPU µs and WAL bytes per event of each
    part, and what those predict for a machine with more cores."""
    print("\nside by side (largest fleet of each run):")
    by_n: dict[int, Cell] = {}
    for c in cells:
        if c.replicas not in by_n or c.sites >= by_n[c.replicas].sites:
            by_n[c.replicas] = c
    one = by_n[min(by_n)]
    print(f"{'replicas':>8} {'events/s':>9} {'vs 1':>6} {'p99 ms':>7}   per event: "
          f"{'cloud µs':>8} {'pg µs':>6} {'lb µs':>6} {'gen µs':>6} {'WAL B':>6}")  # fmt: skip
    for n, c in sorted(by_n.items()):
        us = 1e6 / c.events_per_s if c.events_per_s else float("nan")
        print(
            f"{n:>8} {c.events_per_s:>9,.0f} {c.events_per_s / one.events_per_s:>5.2f}x "
            f"{c.p99_ms:>7.1f}   {'':>10} {sum(c.replica_cores) * us:>8.1f} "
            f"{c.postgres * us:>6.1f} {c.balancer * us:>6.1f} {c.generators * us:>6.1f} "
            f"{c.wal_per_event:>6.0f}"
        )
    verdict = "meets" if one.events_per_s >= GOAL_ONE_REPLICA else "misses"
    print(
        f"one replica: {one.events_per_s:,.0f} events/s, goal {GOAL_ONE_REPLICA:,}: {verdict} "
        f"({one.events_per_s / GOAL_ONE_REPLICA:.2f}x)"
    )
    predict(by_n)


def predict(by_n: dict[int, Cell]) -> None:
    """Events/s on a quiet machine of C cores with one replica per core: each replica is
    capped by its own core (a Python process), and all of them, PostgreSQL and HAProxy
    share the C cores at the CPU per event measured here (the most replicas' run)."""
    most = by_n[max(by_n)]
    one = by_n[min(by_n)]
    replica_us = sum(one.replica_cores) / one.events_per_s * 1e6  # one replica, one core
    server_us = (sum(most.replica_cores) + most.postgres + most.balancer) / most.events_per_s
    server_us *= 1e6
    wal = most.wal_per_event
    print(
        f"prediction, quiet machine, one replica per core: a replica tops out at "
        f"{1e6 / replica_us:,.0f} events/s (its core), the server side costs "
        f"{server_us:.1f} CPU µs per event, PostgreSQL writes {wal:.0f} B of WAL per event"
    )
    for cores in (2, 4, 8, 16):
        rate = min(cores * 1e6 / replica_us, cores * 1e6 / server_us)
        print(
            f"  {cores:>2} cores: ~{rate:>9,.0f} events/s, WAL {rate * wal / 1e6:5.0f} MB/s "
            "(PostgreSQL's disk must keep up)"
        )


def main() -> None:
    if "--generate" in sys.argv:
        generator_main()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 and 2 replicas, 2 fleets, 4 s")
    parser.add_argument("--replicas", default="1,2,4")
    parser.add_argument("--sites", default="100,1000,5000")
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per cell")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--batch", type=int, default=500, help="events per upload")
    parser.add_argument("--generators", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--connections", type=int, default=2, help="per generator (more only queues: p99 up)"
    )
    parser.add_argument("--db", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    if args.quick:
        args.replicas, args.sites, args.window, args.warmup = "1,2", "100,5000", 4.0, 1.0
    replica_counts = [int(x) for x in args.replicas.split(",")]
    site_counts = [int(x) for x in args.sites.split(",")]
    tokens = Tokens.issue([f"site-{i:05d}" for i in range(max(site_counts))])
    print(
        f"{CORES} cores; {args.batch}-event gzip batches, {args.generators} generators x "
        f"{args.connections} connections; {args.window:g} s per cell; cores = CPU seconds "
        "per second"
    )
    print(HEADER, flush=True)
    cells = []
    with tempfile.TemporaryDirectory(prefix="cloud_scale_") as tmp:
        for n in replica_counts:
            cells += run_replicas(n, site_counts, tokens, args, Path(tmp))
    summary(cells)


if __name__ == "__main__":
    main()
