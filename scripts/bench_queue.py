"""Queue benchmark: this project vs procrastinate vs pgqueuer, no-op jobs, one fresh database each.

    .venv/bin/python scripts/bench_queue.py             # --jobs 20000 per drain, about 4 minutes
    .venv/bin/python scripts/bench_queue.py --quick     # smoke check, under a minute

Each system gets its own fresh database `bench_<system>` on the same server (created, then dropped).
Each phase runs for all systems in turn, so drift in the load of a shared machine hits them alike.

enqueue  jobs/s over the two fills below, in batches of --batch, through each library's batch API
         (ours JobQueue.enqueue_many; procrastinate Task.batch_defer_async; pgqueuer Queries.enqueue
         with lists).
drain    fill the queue with --jobs jobs, then time from spawning 1 (then 4) worker processes until
         all have exited. "net" subtracts the same spawn on an empty queue (start + exit overhead,
         the faster of two tries).
         Workers and their settings: ours `python -m enchant_worker.cli worker --types noop --burst`
         (concurrency 1; the noop handler's batch_size sets how many it prefetches); procrastinate
         App.run_worker(wait=False), async task, concurrency as tuned; pgqueuer
         QueueManager.run(mode=drain), batch_size as tuned, durable (logged) tables, async entrypoint.
         Every job is checked to have completed. Caveat: on an empty queue our burst worker takes ~1 s to exit (heartbeat minimum interval, listener poll), after a longer
         run less, so subtracting its empty-queue spawn flatters our "net" a little; "raw" does not.
latency  one idle worker process per system; --latency-jobs jobs each, enqueued one at a time, the
         systems taking turns 20 ms apart. From time.time() just before the enqueue call (one
         autocommit INSERT: it commits) to time.time() as the handler starts
         (bench_handlers.record_start, the same code for all three).
cost     during the 4-process drain: transactions per job in the bench database
         (pg_stat_database.xact_commit, read-only ones included: procrastinate's pool checks count)
         and WAL syncs and bytes per job (pg_stat_wal: server-wide, so anything else running on
         the server counts too). WAL syncs are what a durable commit waits for.
context  the median time of one durable commit (a one-row INSERT) just before each system's run:
         fsync time drives every figure here, and it varies when the machine is shared.
interleaved enqueue  (also alone: --only enqueue) --enqueue-rounds batches of --batch per system, the
         systems taking turns batch by batch; the median batch's jobs/s and the median ours/peer ratio.
tuning   first of all, the peers at their best: procrastinate's concurrency (1, 4, 16; its default 1)
         and pgqueuer's batch_size (10, 50, 200; its default 10), each value draining --tune-jobs jobs
         with one process (best of two); every later phase uses the fastest (--tune-jobs 0: defaults).
fairness (--only fairness) user A queues --fair-jobs no-op jobs, then user B queues --fair-b in one
         batch, --fair-workers listening worker processes per system; B's enqueue-to-start p50/p95
         against B's on an idle queue, and the flood's drain, for ours (fair share), ours with
         ENCHANT_QUEUE_FAIR_SHARE=false, procrastinate and pgqueuer (both FIFO).

The peers are dev-only dependencies (`pip install -e '.[dev]'`); a missing one is skipped with a note.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = Path(__file__).resolve().parent
SYSTEMS = ("ours", "procrastinate", "pgqueuer")
PROCESS_TIMEOUT_S = 600


# -- the three systems: schema, batch enqueue, single enqueue, worker command, completion count -------


class Ours:
    name = "ours"

    async def setup(self, conninfo: str) -> None:
        from enchant_worker.db.connection import connect
        from enchant_worker.db.migrate import migrate
        from enchant_worker.queue import JobQueue

        self.conn = connect(conninfo)
        migrate(self.conn, REPO / "migrations")
        self.queue = JobQueue(self.conn)

    async def enqueue_batch(self, n: int) -> None:
        from enchant_worker.domain.jobs import NewJob

        self.queue.enqueue_many([NewJob("noop") for _ in range(n)])

    async def enqueue_one(self, seq: int) -> None:
        from enchant_worker.domain.jobs import NewJob

        self.queue.enqueue(NewJob("bench_latency", {"seq": seq}))

    def worker_command(self, conninfo: str, drain: bool) -> tuple[list[str], dict[str, str]]:
        cmd = [sys.executable, "-m", "enchant_worker.cli", "--log-level", "WARNING", "worker"]
        cmd += (
            ["--types", "noop", "--burst"]
            if drain
            else ["--types", "bench_latency", "--handlers", "bench_handlers"]
        )
        return cmd, {"ENCHANT_DATABASE_URL": conninfo, "PYTHONPATH": str(SCRIPTS)}

    completion_sql = """SELECT count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status <> 'completed')
                        FROM processing_jobs WHERE job_type = 'noop'"""
    done_sql = "SELECT count(*) FROM processing_jobs WHERE status = 'completed'"
    worker_env: dict[str, str] = {}

    async def make_users(self) -> None:
        """User A (the flood) and user B, both of the free tier (weight 1, no cap). Each holds an admin key,
        so the worker's re-check lets them run the benchmark's plugin job type (it still runs, per job)."""
        self.users = [
            self.conn.execute(
                "INSERT INTO users (email) VALUES (%s) RETURNING id", (f"{n}@bench",)
            ).fetchone()["id"]
            for n in "AB"
        ]
        for n, user in zip("AB", self.users, strict=True):
            self.conn.execute(
                "INSERT INTO api_keys (name, prefix, key_hash, role, user_id) "
                "VALUES (%s, 'bench', %s, 'admin', %s)",
                (f"bench {n}", f"bench-{n}", user),
            )

    async def enqueue_flood(self, n: int) -> None:
        """In batches of 1,000, as the peers do: the workers may start on the flood while it arrives."""
        from enchant_worker.domain.jobs import NewJob

        for i in range(0, n, 1000):
            self.queue.enqueue_many([NewJob("noop", user_id=self.users[0]) for _ in range(min(1000, n - i))])

    async def enqueue_seqs(self, seqs: list[int]) -> None:
        from enchant_worker.domain.jobs import NewJob

        self.queue.enqueue_many([NewJob("bench_latency", {"seq": s}, user_id=self.users[1]) for s in seqs])

    def fair_worker_command(self, conninfo: str) -> tuple[list[str], dict[str, str]]:
        cmd, env = self.worker_command(conninfo, drain=False)
        cmd[cmd.index("bench_latency")] = "noop,bench_latency"
        return cmd, {**env, **self.worker_env}

    async def close(self) -> None:
        self.conn.close()


class OursFifo(Ours):
    """Ours with fair share off: the lease strictly by priority, then age, like the peers'."""

    name = "ours-fifo"
    worker_env = {"ENCHANT_QUEUE_FAIR_SHARE": "false"}


class FifoPeer:
    """What the fairness scenario asks of a peer queue: it has no users (FIFO), floods in batches of
    1,000, and its workers run as for the drain."""

    async def make_users(self) -> None:
        pass

    async def enqueue_flood(self, n: int) -> None:
        for i in range(0, n, 1000):
            await self.enqueue_batch(min(1000, n - i))

    def fair_worker_command(self, conninfo: str) -> tuple[list[str], dict[str, str]]:
        return self.worker_command(conninfo, drain=False)


class Procrastinate(FifoPeer):
    name = "procrastinate"
    knob, choices = "concurrency", (1, 4, 16)  # tasks run at once per worker (its default: 1)
    value = 1

    async def setup(self, conninfo: str) -> None:
        self.app = procrastinate_app(conninfo)
        await self.app.open_async()
        await self.app.schema_manager.apply_schema_async()
        self.task = self.app.tasks["noop"]

    async def enqueue_batch(self, n: int) -> None:
        await self.task.batch_defer_async(*({} for _ in range(n)))

    async def enqueue_one(self, seq: int) -> None:
        await self.task.defer_async(seq=seq)

    def worker_command(self, conninfo: str, drain: bool) -> tuple[list[str], dict[str, str]]:
        return peer_worker_command(self.name, conninfo, drain, self.value)

    completion_sql = """SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status <> 'succeeded')
                        FROM procrastinate_jobs WHERE task_name = 'noop'"""
    done_sql = "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"

    async def enqueue_seqs(self, seqs: list[int]) -> None:
        await self.task.batch_defer_async(*({"seq": s} for s in seqs))

    async def close(self) -> None:
        await self.app.close_async()


class PgQueuer(FifoPeer):
    name = "pgqueuer"
    knob, choices = "batch_size", (10, 50, 200)  # jobs per dequeue (its default: 10)
    value = 10

    async def setup(self, conninfo: str) -> None:
        import asyncpg
        from pgqueuer.db import AsyncpgDriver
        from pgqueuer.queries import Queries

        self.conn = await asyncpg.connect(**asyncpg_params(conninfo))
        self.queries = Queries(AsyncpgDriver(self.conn))
        await self.queries.install()

    async def enqueue_batch(self, n: int) -> None:
        await self.queries.enqueue(["noop"] * n, [None] * n, [0] * n)

    async def enqueue_one(self, seq: int) -> None:
        await self.queries.enqueue("noop", str(seq).encode())

    def worker_command(self, conninfo: str, drain: bool) -> tuple[list[str], dict[str, str]]:
        return peer_worker_command(self.name, conninfo, drain, self.value)

    # Done jobs leave the queue table for the log.
    completion_sql = """SELECT (SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'),
                               (SELECT count(*) FROM pgqueuer)"""
    done_sql = "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"

    async def enqueue_seqs(self, seqs: list[int]) -> None:
        await self.queries.enqueue(["noop"] * len(seqs), [str(s).encode() for s in seqs], [0] * len(seqs))

    async def close(self) -> None:
        await self.conn.close()


def procrastinate_app(conninfo: str):
    import procrastinate
    from bench_handlers import record_start

    # Its warning about an App defined in __main__ is moot here: the task is found by its explicit name.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="noop")
    async def noop(seq: int | None = None) -> None:
        if seq is not None:
            record_start(seq)

    return app


def asyncpg_params(conninfo: str) -> dict:
    params = conninfo_to_dict(conninfo)
    params["database"] = params.pop("dbname", None)
    return {k: v for k, v in params.items() if k in ("host", "port", "user", "password", "database")}


def peer_worker_command(
    system: str, conninfo: str, drain: bool, value: int
) -> tuple[list[str], dict[str, str]]:
    return [
        sys.executable,
        __file__,
        "peer-worker",
        system,
        conninfo,
        "drain" if drain else "listen",
        str(value),
    ], {}


def peer_worker(system: str, conninfo: str, mode: str, value: str) -> None:
    """A peer's worker process (this script re-run): drains and exits, or listens until SIGTERM. `value`
    is the peer's knob (procrastinate's concurrency, pgqueuer's batch size)."""
    drain = mode == "drain"
    if system == "procrastinate":
        procrastinate_app(conninfo).run_worker(wait=not drain, concurrency=int(value))
        return

    import asyncpg
    from bench_handlers import record_start
    from pgqueuer.db import AsyncpgDriver
    from pgqueuer.qm import QueueManager
    from pgqueuer.queries import Queries
    from pgqueuer.types import QueueExecutionMode

    async def main() -> None:
        conn = await asyncpg.connect(**asyncpg_params(conninfo))
        qm = QueueManager(Queries(AsyncpgDriver(conn)))

        @qm.entrypoint("noop")
        async def noop(job) -> None:
            if job.payload is not None:
                record_start(job.payload.decode())

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, qm.shutdown.set)
        await qm.run(
            batch_size=int(value), mode=QueueExecutionMode.drain if drain else QueueExecutionMode.continuous
        )
        await conn.close()

    asyncio.run(main())


# -- measuring ---------------------------------------------------------------------------------------


def spawn(
    system, conninfo: str, processes: int, *, drain: bool, extra_env: dict | None = None, fair: bool = False
) -> list:
    cmd, env = system.fair_worker_command(conninfo) if fair else system.worker_command(conninfo, drain)
    env = {**os.environ, **env, **(extra_env or {})}
    return [
        subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(processes)
    ]


def wait_all(procs: list, what: str) -> None:
    for p in procs:
        try:
            out, _ = p.communicate(timeout=PROCESS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            raise SystemExit(
                f"{what}: a worker ran past {PROCESS_TIMEOUT_S} s; its output:\n{out[-3000:]}"
            ) from None
        if p.returncode != 0:
            raise SystemExit(f"{what}: a worker exited with {p.returncode}; its output:\n{out[-3000:]}")


def timed_drain(system, conninfo: str, processes: int) -> float:
    started = time.perf_counter()
    wait_all(spawn(system, conninfo, processes, drain=True), f"{system.name} drain x{processes}")
    return time.perf_counter() - started


def server_stats(admin: psycopg.Connection, dbname: str) -> tuple[int, int, int]:
    time.sleep(0.5)  # backends that just exited flush their counters as they go
    return admin.execute(
        """SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = %s), wal_sync, wal_bytes::bigint
           FROM pg_stat_wal""",
        (dbname,),
    ).fetchone()


def completion(conninfo: str, sql: str) -> tuple[int, int]:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        return conn.execute(sql).fetchone()


def commit_latency_ms(conninfo: str) -> float:
    """Median time of a one-row INSERT in autocommit: what one durable commit (a WAL fsync) costs now."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS bench_commit_probe (x int)")
        times = []
        for _ in range(30):
            started = time.perf_counter()
            conn.execute("INSERT INTO bench_commit_probe VALUES (1)")
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def fill(system, jobs: int, batch: int) -> float:
    started = time.perf_counter()
    for i in range(0, jobs, batch):
        await system.enqueue_batch(min(batch, jobs - i))
    return time.perf_counter() - started


async def drain(system, admin: psycopg.Connection, n: int, overhead: float, args, r: dict) -> None:
    """Fill the queue, then time n worker processes draining it; check that every job completed."""
    r.setdefault("commit_ms", []).append(commit_latency_ms(system.conninfo))
    r["enqueue_s"] = r.get("enqueue_s", 0.0) + await fill(system, args.jobs, args.batch)
    r["enqueued"] = r.get("enqueued", 0) + args.jobs
    before = server_stats(admin, system.dbname)
    raw = timed_drain(system, system.conninfo, n)
    after = server_stats(admin, system.dbname)
    done, left = completion(system.conninfo, system.completion_sql)
    if done != r["enqueued"] or left:
        raise SystemExit(f"{system.name} drain x{n}: {done} of {r['enqueued']} jobs completed, {left} not")
    if raw > overhead:  # else the drain was too short to tell (raise --jobs)
        r[f"drain{n}_net"] = args.jobs / (raw - overhead)
        r[f"drain{n}_net_shaky"] = overhead > raw / 2
    r[f"drain{n}_raw"] = args.jobs / raw
    r[f"overhead{n}"] = overhead
    if n == 4:
        r["commits"], r["wal_syncs"], r["wal_kb"] = (
            (a - b) / args.jobs for a, b in zip(after, before, strict=True)
        )
        r["wal_kb"] /= 1024
    print(f"  {system.name}: drain x{n} {raw:.2f} s raw, {overhead:.2f} s start+exit", file=sys.stderr)


async def tune(
    peers: list, admin: psycopg.Connection, admin_url: str, jobs: int
) -> dict[str, dict[int, float]]:
    """The peers at their best: each value of a peer's knob drains `jobs` no-op jobs with one worker
    process, on a fresh database of its own, the values taking turns (twice, best kept); the fastest
    value is the one every later phase uses."""
    rates: dict[str, dict[int, float]] = {}
    for s in peers:
        s.dbname = f"bench_tune_{s.name}"
        admin.execute(f"DROP DATABASE IF EXISTS {s.dbname} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {s.dbname}")
        s.conninfo = make_conninfo(admin_url, dbname=s.dbname)
        await s.setup(s.conninfo)
        try:
            rates[s.name] = {v: 0.0 for v in s.choices}
            for _ in range(2):
                for value in s.choices:
                    s.value = value
                    await fill(s, jobs, 1000)
                    rates[s.name][value] = max(rates[s.name][value], jobs / timed_drain(s, s.conninfo, 1))
            s.value = max(s.choices, key=lambda v: rates[s.name][v])
            print(
                f"  {s.name} {s.knob}: "
                + ", ".join(f"{v} {r:,.0f} jobs/s" for v, r in rates[s.name].items())
                + f"; using {s.value}",
                file=sys.stderr,
            )
        finally:
            await s.close()
            admin.execute(f"DROP DATABASE IF EXISTS {s.dbname} WITH (FORCE)")
    return rates


def print_tuning(rates: dict[str, dict[int, float]], peers: list) -> None:
    print(
        "\nPeers tuned: drain jobs/s of one worker process for each value of its knob (best of two); the "
        "fastest is used throughout."
    )
    for s in peers:
        cells = ", ".join(f"{v}: {r:,.0f}" for v, r in rates[s.name].items())
        print(f"{s.name} {s.knob} {cells} -> {s.value}")


async def latency(systems: list, jobs: int, spacing_s: float, results: dict) -> None:
    """p50/p95 from just before each enqueue to its handler's start, one idle worker process per system.
    The systems take turns, one job at a time, so a change in the machine's load hits all alike."""
    with tempfile.TemporaryDirectory() as tmp:
        files = {s.name: Path(tmp) / s.name for s in systems}
        procs = {}
        try:
            for s in systems:
                files[s.name].touch()
                procs[s.name] = spawn(
                    s, s.conninfo, 1, drain=False, extra_env={"BENCH_LATENCY_FILE": str(files[s.name])}
                )
                await s.enqueue_one(-1)  # warm-up: the worker is up and idle once this one has run
            for s in systems:
                await wait_for_lines(files[s.name], 1, 60, procs[s.name])
            sent = {s.name: {} for s in systems}
            for seq in range(jobs):
                for s in systems:
                    await asyncio.sleep(spacing_s)
                    sent[s.name][seq] = time.time()
                    await s.enqueue_one(seq)
            for s in systems:
                await wait_for_lines(files[s.name], jobs + 1, 30, procs[s.name])
        finally:
            for name, ps in procs.items():
                for p in ps:
                    p.send_signal(signal.SIGTERM)
                wait_all(ps, f"{name} latency worker")
        for s in systems:
            lines = files[s.name].read_text().splitlines()
            starts = {int(seq): float(t) for seq, t in (line.split() for line in lines)}
            if len(lines) != jobs + 1 or set(sent[s.name]) - set(starts):
                raise SystemExit(f"{s.name} latency: a job never started, or one started twice")
            qs = statistics.quantiles(
                [starts[i] - t for i, t in sent[s.name].items()], n=100, method="inclusive"
            )
            results[s.name]["p50"], results[s.name]["p95"] = qs[49] * 1000, qs[94] * 1000


async def fairness(systems: list, admin: psycopg.Connection, admin_url: str, args) -> dict[str, dict]:
    """User A queues --fair-jobs no-op jobs, then user B queues --fair-b; B's enqueue-to-start p50/p95
    against B's on an empty queue, and the flood's drain throughput, with --fair-workers worker
    processes per system (listening, not draining). Systems run one after the other, each on a fresh
    database, with only its own workers running."""
    results: dict[str, dict] = {}
    for s in systems:
        s.dbname = f"bench_fair_{s.name.replace('-', '_')}"
        admin.execute(f"DROP DATABASE IF EXISTS {s.dbname} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {s.dbname}")
        s.conninfo = make_conninfo(admin_url, dbname=s.dbname)
        try:
            await s.setup(s.conninfo)
            await s.make_users()
            results[s.name] = await fairness_one(s, args)
            print(f"  {s.name}: fairness {results[s.name]}", file=sys.stderr)
        finally:
            await s.close()
            admin.execute(f"DROP DATABASE IF EXISTS {s.dbname} WITH (FORCE)")
    return results


async def fairness_one(system, args) -> dict[str, float]:
    r: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        starts_file = Path(tmp) / "starts"
        starts_file.touch()
        procs = spawn(
            system,
            system.conninfo,
            args.fair_workers,
            drain=False,
            fair=True,
            extra_env={"BENCH_LATENCY_FILE": str(starts_file)},
        )
        try:
            await system.enqueue_seqs([-1])  # warm-up: the workers are up once this one has run
            await wait_for_lines(starts_file, 1, 60, procs)
            expected_done = 1

            async def b_latencies(first_seq: int) -> list[float]:
                seqs = list(range(first_seq, first_seq + args.fair_b))
                sent = time.time()
                await system.enqueue_seqs(seqs)
                lines = await wait_for_lines(
                    starts_file, first_seq + args.fair_b + 1, PROCESS_TIMEOUT_S, procs
                )
                starts = {int(a): float(b) for a, b in (line.split() for line in lines)}
                return [(starts[s] - sent) * 1000 for s in seqs]

            empty = await b_latencies(0)  # B alone, the queue empty
            expected_done += args.fair_b
            while completion_count(system) < expected_done:
                await asyncio.sleep(0.05)
            flood_started = time.perf_counter()
            await system.enqueue_flood(args.fair_jobs)
            r["flood_enqueue_s"] = time.perf_counter() - flood_started
            flooded = await b_latencies(args.fair_b)  # B right after A's flood
            expected_done += args.fair_b + args.fair_jobs
            while completion_count(system) < expected_done:
                await asyncio.sleep(0.05)
            r["flood_drain"] = args.fair_jobs / (time.perf_counter() - flood_started)
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            wait_all(procs, f"{system.name} fairness workers")
    for key, values in (("empty", empty), ("flood", flooded)):
        qs = statistics.quantiles(values, n=100, method="inclusive")
        r[f"b_{key}_p50"], r[f"b_{key}_p95"] = qs[49], qs[94]
    r["b_p95_vs_empty"] = r["b_flood_p95"] / r["b_empty_p95"]
    return r


def completion_count(system) -> int:
    with psycopg.connect(system.conninfo, autocommit=True) as conn:
        return conn.execute(system.done_sql).fetchone()[0]


def print_fairness(results: dict[str, dict], args) -> None:
    print(
        f"\nFairness: user A queues {args.fair_jobs:,} no-op jobs (batches of 1,000), then user B queues "
        f"{args.fair_b} in one batch; {args.fair_workers} worker processes per system."
    )
    print(
        "B's enqueue-to-start, ms (the whole batch sent at once; empty: B alone on an idle queue). "
        "Drain: A's jobs/s from the start of the flood's enqueue until all have completed."
    )
    names = [n for n in ("ours", "ours-fifo", "procrastinate", "pgqueuer") if n in results]
    print(f"{'metric':34}" + "".join(f"{n:>15}" for n in names))
    for key, label, fmt in (
        ("b_empty_p50", "B p50, empty queue", "{:,.1f}"),
        ("b_empty_p95", "B p95, empty queue", "{:,.1f}"),
        ("b_flood_p50", "B p50, after A's flood", "{:,.1f}"),
        ("b_flood_p95", "B p95, after A's flood", "{:,.1f}"),
        ("b_p95_vs_empty", "B p95 flood / empty (target <= 3)", "{:.2f}"),
        ("flood_enqueue_s", "flood enqueue, s (workers on)", "{:.2f}"),
        ("flood_drain", "flood drain, jobs/s", "{:,.0f}"),
    ):
        print(f"{label:34}" + "".join(f"{fmt.format(results[n][key]):>15}" for n in names))
    ours = results.get("ours", {})
    for peer in names[1:]:
        p = results[peer]
        print(
            f"ours vs {peer}: B p95 after the flood {p['b_flood_p95'] / ours['b_flood_p95']:.1f}x better; "
            f"flood drain {ours['flood_drain'] / p['flood_drain']:.2f}x"
        )
    if "pgqueuer" in results and ours:
        # The flood cannot be done before it has been enqueued: what the drain target leaves the drain.
        needed_s = args.fair_jobs / (2 * results["pgqueuer"]["flood_drain"])
        print(
            f"2x pgqueuer's flood drain means all {args.fair_jobs:,} jobs done {needed_s:.2f} s after the "
            f"flood's first batch; ours took {ours['flood_enqueue_s']:.2f} s to enqueue them (workers "
            f"running), leaving {needed_s - ours['flood_enqueue_s']:.2f} s to finish the rest"
        )


async def wait_for_lines(path: Path, count: int, timeout_s: float, procs: list) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while path.read_text().count("\n") < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise SystemExit(
                f"latency: {count} job(s) did not all start within {timeout_s:g} s "
                f"(worker exit codes {[p.poll() for p in procs]})"
            )
        await asyncio.sleep(0.005)
    return path.read_text().splitlines()


async def interleaved_enqueue(systems: list, args, results: dict) -> None:
    """Batch enqueue with the systems taking turns batch by batch (--enqueue-rounds batches of --batch
    each), so that a burst of load from elsewhere on the machine hits all alike; the median batch's
    jobs/s, and the median over rounds of ours/peer. Run last: the jobs are left in the queue."""
    rates: dict[str, list[float]] = {s.name: [] for s in systems}
    for _ in range(args.enqueue_rounds):
        for s in systems:
            started = time.perf_counter()
            await s.enqueue_batch(args.batch)
            rates[s.name].append(args.batch / (time.perf_counter() - started))
    for s in systems:
        results[s.name]["enqueue_rounds"] = statistics.median(rates[s.name])
        if s.name != "ours":
            ratios = [a / b for a, b in zip(rates["ours"], rates[s.name], strict=True)]
            results[s.name]["enqueue_round_ratio"] = statistics.median(ratios)


async def bench(systems: list, admin: psycopg.Connection, admin_url: str, args) -> dict[str, dict]:
    """Each phase runs for every system in turn (not system after system), so that drift in the load
    of a shared machine does not favour one of them."""
    results: dict[str, dict] = {s.name: {} for s in systems}
    opened = []
    try:
        for s in systems:
            s.dbname = f"bench_{s.name}"
            admin.execute(f"DROP DATABASE IF EXISTS {s.dbname} WITH (FORCE)")
            admin.execute(f"CREATE DATABASE {s.dbname}")
            s.conninfo = make_conninfo(admin_url, dbname=s.dbname)
            await s.setup(s.conninfo)
            opened.append(s)
        if args.only != "enqueue":
            overhead = {
                (s.name, n): min(timed_drain(s, s.conninfo, n) for _ in range(2))
                for n in (1, 4)
                for s in systems
            }
            for n in (1, 4):
                for s in systems:
                    await drain(s, admin, n, overhead[s.name, n], args, results[s.name])
            print("  latency...", file=sys.stderr)
            await latency(systems, args.latency_jobs, 0.02, results)
            for r in results.values():
                r["enqueue"] = r.pop("enqueued") / r.pop("enqueue_s")
        print("  interleaved enqueue...", file=sys.stderr)
        await interleaved_enqueue(systems, args, results)
        return results
    finally:
        for s in opened:
            await s.close()
        for s in systems:
            admin.execute(f"DROP DATABASE IF EXISTS bench_{s.name} WITH (FORCE)")


# -- the table ---------------------------------------------------------------------------------------

# key, label, format, higher is better (None: context, no ratio)
ROWS = [
    ("commit_ms", "(context) one commit, ms, before x1/x4", "{0[0]:.2f}/{0[1]:.2f}", None),
    ("enqueue", "batch enqueue, jobs/s", "{:,.0f}", True),
    ("enqueue_rounds", "batch enqueue, interleaved, jobs/s", "{:,.0f}", True),
    ("drain1_net", "drain 1 process, jobs/s net", "{:,.0f}", True),
    ("drain1_raw", "drain 1 process, jobs/s raw", "{:,.0f}", True),
    ("overhead1", "  start+exit 1 process, s", "{:.2f}", False),
    ("drain4_net", "drain 4 processes, jobs/s net", "{:,.0f}", True),
    ("drain4_raw", "drain 4 processes, jobs/s raw", "{:,.0f}", True),
    ("overhead4", "  start+exit 4 processes, s", "{:.2f}", False),
    ("p50", "enqueue-to-start p50, ms", "{:.2f}", False),
    ("p95", "enqueue-to-start p95, ms", "{:.2f}", False),
    ("commits", "drain x4: transactions/job", "{:.3f}", False),
    ("wal_syncs", "drain x4: WAL syncs/job (server)", "{:.3f}", False),
    ("wal_kb", "drain x4: WAL kB/job (server)", "{:.2f}", False),
]


def print_table(results: dict[str, dict[str, float]], args) -> None:
    cols = ["ours", "procrastinate", "pgqueuer", "ours/procr.", "ours/pgq."]
    print(
        f"\n{args.jobs:,} no-op jobs per drain, enqueue batches of {args.batch:,}, "
        f"{args.latency_jobs} latency jobs per system (the systems taking turns 20 ms apart)"
    )
    print("Ratio columns: >1 means ours is better (throughput ours/peer; times and per-job costs peer/ours).")
    print(f"{'metric':40}" + "".join(f"{c:>15}" for c in cols))
    for key, label, fmt, higher in ROWS:
        values = [results.get(s, {}).get(key) for s in SYSTEMS]
        cells = [fmt.format(v) if v is not None else "n/a" for v in values]
        for i, system in enumerate(SYSTEMS):
            if results.get(system, {}).get(f"{key}_shaky"):
                cells[i] += "*"
        ours = values[0]
        for peer in values[1:]:
            if higher is None or ours is None or peer is None or min(ours, peer) <= 0:
                cells.append("n/a")
            else:
                cells.append(f"{(ours / peer if higher else peer / ours):.2f}")
        print(f"{label:40}" + "".join(f"{c:>15}" for c in cells))
    for peer in SYSTEMS[1:]:
        if "enqueue_round_ratio" in results.get(peer, {}):
            print(
                f"batch enqueue, median over rounds of ours/{peer}: {results[peer]['enqueue_round_ratio']:.2f}"
            )
    if any(r.get(f"drain{n}_net_shaky") for r in results.values() for n in (1, 4)):
        print("* start+exit took over half of the raw time: that net figure is unreliable (raise --jobs).")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "peer-worker":
        peer_worker(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ENCHANT_DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres",
        help="admin connection; databases bench_<system> are created and dropped on its server",
    )
    parser.add_argument(
        "--jobs", type=int, default=None, help="jobs per drain (default 20000; 1000 with --quick)"
    )
    parser.add_argument("--batch", type=int, default=1000, help="jobs per enqueue batch (default 1000)")
    parser.add_argument("--latency-jobs", type=int, default=None, help="default 200 (30 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke check in under a minute")
    parser.add_argument(
        "--only",
        choices=("throughput", "fairness", "enqueue"),
        default=None,
        help="run one part: throughput (enqueue, drains, latency), fairness, or enqueue alone (default: "
        "throughput and fairness)",
    )
    parser.add_argument(
        "--enqueue-rounds", type=int, default=40, help="interleaved enqueue: batches per system (default 40)"
    )
    parser.add_argument(
        "--fair-jobs", type=int, default=None, help="user A's flood (default 20000; 2000 quick)"
    )
    parser.add_argument("--fair-b", type=int, default=50, help="user B's jobs after the flood (default 50)")
    parser.add_argument(
        "--tune-jobs",
        type=int,
        default=None,
        help="jobs per drain of the peers' sweep (default 2000; 500 with --quick; 0: no sweep, their defaults)",
    )
    parser.add_argument("--fair-workers", type=int, default=2, help="worker processes per system (default 2)")
    parser.add_argument(
        "--peers",
        default="procrastinate,pgqueuer",
        help="the peers to compare, comma-separated (default procrastinate,pgqueuer; empty: ours alone)",
    )
    args = parser.parse_args()
    peers = [p for p in args.peers.split(",") if p]
    if unknown := set(peers) - set(SYSTEMS[1:]):
        parser.error(f"--peers: unknown {', '.join(sorted(unknown))}; known: {', '.join(SYSTEMS[1:])}")
    args.jobs = args.jobs or (1000 if args.quick else 20000)
    args.fair_jobs = args.fair_jobs or (2000 if args.quick else 20000)
    args.latency_jobs = args.latency_jobs or (30 if args.quick else 200)
    if args.tune_jobs is None:
        args.tune_jobs = 500 if args.quick else 2000
    if args.quick:
        args.batch = min(args.batch, 250)

    systems = [Ours()]
    for cls, modules in ((Procrastinate, ["procrastinate"]), (PgQueuer, ["pgqueuer", "asyncpg"])):
        if cls.name not in peers:
            continue
        try:
            for module in modules:
                __import__(module)
            systems.append(cls())
        except ImportError as exc:
            print(
                f"skipping {cls.name}: {exc.name} is not installed (a dev-only dependency: "
                f"pip install -e '.[dev]')",
                file=sys.stderr,
            )

    with psycopg.connect(args.database_url, autocommit=True) as admin:
        peers = [s for s in systems if hasattr(s, "knob")]
        if args.tune_jobs and args.only != "enqueue":
            print_tuning(asyncio.run(tune(peers, admin, args.database_url, args.tune_jobs)), peers)
        if args.only in (None, "throughput", "enqueue"):
            results = asyncio.run(bench(systems, admin, args.database_url, args))
            print_table(results, args)
        if args.only not in ("throughput", "enqueue"):
            fair_systems = [systems[0], OursFifo(), *systems[1:]]
            print_fairness(asyncio.run(fairness(fair_systems, admin, args.database_url, args)), args)


if __name__ == "__main__":
    main()
