-- enqueue_jobs --
-- Insert a batch of jobs with ids chosen by the caller, sent as ONE JSON array of objects: Postgres
-- expands it in C, where binding ten arrays cost more in Python than the insert itself (measured:
-- batch enqueue ~1.6x). One statement, so the statement triggers notify once per job type and count
-- once. A batch without idempotency keys needs no conflict check.
INSERT INTO processing_jobs
    (id, job_type, metadata, priority, max_attempts, entity_type, entity_id, user_id, idempotency_key, run_after)
SELECT t.id, t.job_type, COALESCE(t.metadata, '{}'), t.priority, t.max_attempts, t.entity_type, t.entity_id,
       t.user_id, t.idempotency_key, COALESCE(t.run_after, NOW())
FROM jsonb_to_recordset(%(jobs)s::jsonb)
     AS t(id uuid, job_type text, metadata jsonb, priority smallint, max_attempts int, entity_type text,
          entity_id uuid, user_id uuid, idempotency_key text, run_after timestamptz)

-- enqueue_jobs_copy --
-- The fastest path for a batch without idempotency keys or run_after (JobQueue._copy): COPY fires the
-- same statement triggers as an INSERT (one notification per job type, one count), and run_after takes
-- the server's NOW() from its default.
COPY processing_jobs (id, job_type, metadata, priority, max_attempts, entity_type, entity_id, user_id) FROM STDIN

-- enqueue_jobs_keyed --
-- The same for a batch with idempotency keys: a job whose key its user has used already is not inserted
-- again (see jobs_by_idempotency_key).
INSERT INTO processing_jobs
    (id, job_type, metadata, priority, max_attempts, entity_type, entity_id, user_id, idempotency_key, run_after)
SELECT t.id, t.job_type, COALESCE(t.metadata, '{}'), t.priority, t.max_attempts, t.entity_type, t.entity_id,
       t.user_id, t.idempotency_key, COALESCE(t.run_after, NOW())
FROM jsonb_to_recordset(%(jobs)s::jsonb)
     AS t(id uuid, job_type text, metadata jsonb, priority smallint, max_attempts int, entity_type text,
          entity_id uuid, user_id uuid, idempotency_key text, run_after timestamptz)
ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING

-- jobs_by_idempotency_key --
-- The jobs that hold these (user, idempotency key) pairs (after an enqueue: ours, or those enqueued
-- before), with what they are, so that a key reused for another job is told apart.
SELECT j.id, j.user_id, j.idempotency_key, j.job_type, j.metadata
FROM processing_jobs j
JOIN unnest(%(users)s::uuid[], %(keys)s::text[]) AS k(user_id, key)
  ON j.user_id IS NOT DISTINCT FROM k.user_id AND j.idempotency_key = k.key

-- lease_jobs --
-- Lease up to `limit` runnable jobs of the given types for one worker, in one statement. The lease is
-- counted as an attempt; `start` says whether the worker runs them at once (else it prefetches them, and
-- the reaper gives back those it never started without spending the attempt: see reap_expired).
WITH next AS (
    -- Runnable: pending and not deferred. Most urgent first (lower priority value), then oldest: the
    -- order of the queue index. SKIP LOCKED gives concurrent workers disjoint rows without waiting.
    SELECT id FROM processing_jobs
    WHERE status = 'pending' AND run_after <= NOW() AND job_type = ANY(%(types)s)
    ORDER BY priority, created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
-- A fresh token per lease: every later write of this job must present it, so a worker whose lease
-- expired and was taken over can no longer touch the job.
UPDATE processing_jobs j
SET status = 'processing', leased_by = %(worker)s, lease_token = gen_random_uuid(),
    lease_expires_at = NOW() + make_interval(secs => %(lease_s)s), heartbeat_at = NOW(),
    attempts = j.attempts + 1, started_at = NOW(), progress_percent = 0, run_started = %(start)s
FROM next
WHERE j.id = next.id
RETURNING j.*

-- lease_jobs_fair --
-- The lease with fair share inside a priority level (ENCHANT_QUEUE_FAIR_SHARE, on by default): the same
-- writes as lease_jobs, but the jobs are chosen across groups (a user; jobs with no user are one group)
-- instead of strictly by age. A group's k-th job of this lease has the virtual time
-- (running + k) / weight, where running counts the group's jobs being processed now and weight comes from
-- its tier (fair_share_weight, or the user's override); jobs are taken by priority, then virtual time,
-- then age. So a free slot goes to the group furthest below its weighted share of the workers, a user
-- with a flood of jobs cannot hold back another's, and a group at its cap (max_running_jobs) gets none.
-- Within a group the order stays priority then age. Every step is an index probe on
-- idx_processing_jobs_fair; the cost grows with the number of groups waiting, not with the backlog.
-- Warm affinity (README "Affinity"): a worker with models resident sends `prefer` and their keys
-- (warm_models, warm_loras: what processing_jobs.affinity_model and affinity_loras hold). Each group's
-- first `window` jobs in queue order are then ranked: 0 needs nothing loaded (its model and all its LoRAs
-- warm, or no model at all) or has been runnable for longer than affinity_wait_s; 1 its model is warm;
-- 2 nothing is. Within a group the order becomes priority, rank, age; between groups the rank only breaks
-- ties of virtual time, so priority and fair share decide as before.
WITH RECURSIVE waiting AS (
    -- Loose index scan: the groups with pending jobs, one probe each.
    (SELECT COALESCE(user_id, '00000000-0000-0000-0000-000000000000'::uuid) AS grp FROM processing_jobs
     WHERE status = 'pending'
     ORDER BY COALESCE(user_id, '00000000-0000-0000-0000-000000000000'::uuid) LIMIT 1)
    UNION ALL
    SELECT (SELECT COALESCE(p.user_id, '00000000-0000-0000-0000-000000000000'::uuid) FROM processing_jobs p
            WHERE p.status = 'pending'
              AND COALESCE(p.user_id, '00000000-0000-0000-0000-000000000000'::uuid) > w.grp
            ORDER BY COALESCE(p.user_id, '00000000-0000-0000-0000-000000000000'::uuid) LIMIT 1)
    FROM waiting w WHERE w.grp IS NOT NULL
), shares AS MATERIALIZED (
    -- (Materialized: the running count is read once per group, not once per head job.)
    -- Weight and cap from the user's overrides, else the tier's (arrays from configs/tiers.toml), else
    -- weight 1 and no cap (the no-user group; a tier the file leaves out). Running: being processed now.
    -- An override that is not a number (the API refuses one; plain SQL might write it) is ignored, and
    -- numbers are clamped, so that one bad row cannot make every lease fail.
    SELECT w.grp,
           GREATEST(COALESCE(CASE WHEN jsonb_typeof(u.quota_overrides->'fair_share_weight') = 'number'
                                  THEN LEAST((u.quota_overrides->>'fair_share_weight')::numeric, 1e6)::int END,
                             t.weight, 1), 1) AS weight,
           COALESCE(CASE WHEN jsonb_typeof(u.quota_overrides->'max_running_jobs') = 'number'
                         THEN GREATEST(LEAST((u.quota_overrides->>'max_running_jobs')::numeric, 1e9), 1)::int END,
                    t.cap) AS cap,
           (SELECT count(*) FROM processing_jobs r
            WHERE r.status = 'processing'
              AND COALESCE(r.user_id, '00000000-0000-0000-0000-000000000000'::uuid) = w.grp) AS running
    FROM waiting w
    LEFT JOIN users u ON u.id = w.grp
    LEFT JOIN unnest(%(tier_names)s::text[], %(tier_weights)s::int[], %(tier_caps)s::int[])
        AS t(name, weight, cap) ON t.name = u.subscription_tier
    WHERE w.grp IS NOT NULL
), candidates AS MATERIALIZED (
    -- Each group's first runnable jobs in queue order (none for a group at its cap): `window` of them,
    -- which is the lease's limit when nothing is preferred. Read without locks, with their affinity rank.
    SELECT s.grp, c.id, c.priority, c.created_at, c.runnable_at, c.rank
    FROM shares s
    CROSS JOIN LATERAL (
        SELECT p.id, p.priority, p.created_at, GREATEST(p.created_at, p.run_after) AS runnable_at,
               CASE WHEN NOT %(prefer)s OR p.affinity_model IS NULL
                         OR GREATEST(p.created_at, p.run_after) < NOW() - make_interval(secs => %(affinity_wait_s)s)
                         OR (p.affinity_model = ANY(%(warm_models)s::text[])
                             AND p.affinity_loras <@ %(warm_loras)s::text[]) THEN 0
                    WHEN p.affinity_model = ANY(%(warm_models)s::text[]) THEN 1
                    ELSE 2 END AS rank
        FROM processing_jobs p
        WHERE p.status = 'pending'
          AND COALESCE(p.user_id, '00000000-0000-0000-0000-000000000000'::uuid) = s.grp
          AND p.run_after <= NOW() AND p.job_type = ANY(%(types)s)
        ORDER BY p.priority, p.created_at
        LIMIT CASE WHEN s.running >= s.cap THEN 0 ELSE %(window)s END
    ) c
), heads AS (
    -- Each group's best candidates (priority, rank, age): no more than this lease takes, nor than its cap
    -- leaves room for. They only decide how many to take from each group.
    -- Starvation guard: a group with nothing running whose oldest job has been runnable for longer than
    -- max_wait_s goes first in its priority (with few workers a light group's share can be under one
    -- slot, and (running + k) / weight alone would then never pick it while heavier groups have work).
    SELECT grp, priority, created_at, rank,
           CASE WHEN running = 0 AND k = 1 AND oldest < NOW() - make_interval(secs => %(max_wait_s)s)
                THEN 0 ELSE (running + k)::float8 / weight END AS vtime
    FROM (
        SELECT c.grp, c.priority, c.created_at, c.rank, s.running, s.weight, s.cap,
               min(c.runnable_at) OVER (PARTITION BY c.grp) AS oldest,  -- (one sort serves both windows)
               row_number() OVER (PARTITION BY c.grp ORDER BY c.priority, c.rank, c.created_at) AS k
        FROM candidates c JOIN shares s ON s.grp = c.grp
        WHERE (SELECT count(*) FROM shares) > 1  -- one group alone needs no ranking (see picks)
    ) numbered
    WHERE k <= LEAST(%(limit)s, cap - running)
), picks AS (
    -- How many jobs each group gets: the best `limit` heads by priority, virtual time, rank, age; and the
    -- worst priority among them, so that a group's locked heads are not replaced by its less urgent jobs.
    SELECT grp, count(*) AS n, max(priority) AS worst FROM (
        SELECT grp, priority FROM heads ORDER BY priority, vtime, rank, created_at LIMIT %(limit)s
    ) best
    GROUP BY grp
    UNION ALL
    -- One group waiting (a single user's backlog, or only jobs without a user): as many as its cap
    -- allows, at any priority.
    SELECT grp, GREATEST(LEAST(%(limit)s, cap - running), 0), 32767 FROM shares
    WHERE (SELECT count(*) FROM shares) = 1
), next AS (
    -- Take them, walking each group's jobs in queue order: SKIP LOCKED steps over the rows a concurrent
    -- lease holds (and rows it already took are rechecked and left out), so workers never wait on each
    -- other and a group's jobs are never taken twice.
    SELECT l.id FROM picks
    CROSS JOIN LATERAL (
        SELECT p.id FROM processing_jobs p
        WHERE p.status = 'pending'
          AND COALESCE(p.user_id, '00000000-0000-0000-0000-000000000000'::uuid) = picks.grp
          AND p.priority <= picks.worst AND p.run_after <= NOW() AND p.job_type = ANY(%(types)s)
        ORDER BY p.priority, p.created_at
        LIMIT picks.n
        FOR UPDATE SKIP LOCKED
    ) l
    WHERE NOT %(prefer)s
    UNION ALL
    -- With a preference: the group's candidates in its order (priority, rank, age), locked the same way.
    -- A candidate a concurrent lease holds is skipped; the window is wider than the leases running at
    -- once take, so the group still yields its share.
    SELECT l.id FROM picks
    CROSS JOIN LATERAL (
        SELECT p.id FROM candidates c JOIN processing_jobs p ON p.id = c.id
        WHERE c.grp = picks.grp AND c.priority <= picks.worst AND p.status = 'pending'
        ORDER BY c.priority, c.rank, c.created_at
        LIMIT picks.n
        FOR UPDATE OF p SKIP LOCKED
    ) l
    WHERE %(prefer)s
)
UPDATE processing_jobs j
SET status = 'processing', leased_by = %(worker)s, lease_token = gen_random_uuid(),
    lease_expires_at = NOW() + make_interval(secs => %(lease_s)s), heartbeat_at = NOW(),
    attempts = j.attempts + 1, started_at = NOW(), progress_percent = 0, run_started = %(start)s
-- By primary key, as an array: joined to `next`, a table without statistics yet (right after a bulk
-- insert) was read whole for a hash join (measured: the lease 5x slower at 20,000 pending).
WHERE j.id = ANY(ARRAY(SELECT id FROM next))
RETURNING j.*

-- lease_batch_companions --
-- Cross-job batching: a GPU worker holding a generate_image job (the head, checked by its token) takes up
-- to `limit` more pending generate_image jobs with the same batch key (migration 0091), to run in the
-- same pipeline call. Leased as a prefetch (run_started false): if the worker dies before the batched
-- call starts, they go back without spending an attempt. Order: priority, then round robin across users
-- (everyone's first job before anyone's second), then age; a user at their running cap (as
-- lease_jobs_fair counts it; only with fair share on) gets none. A companion may be less urgent than
-- other waiting work: it rides on a call that runs anyway, for a fraction of a call's time.
WITH head AS (
    SELECT generation_batch_key(metadata) AS key FROM processing_jobs
    WHERE id = %(id)s AND lease_token = %(token)s AND status = 'processing' AND job_type = 'generate_image'
), candidates AS MATERIALIZED (
    -- The first few of the key in queue order (one range of idx_processing_jobs_batch), read without
    -- locks (a window function cannot lock), numbered per user for the round robin.
    SELECT c.id, c.priority, c.created_at, c.grp,
           row_number() OVER (PARTITION BY c.grp ORDER BY c.priority, c.created_at) AS k
    FROM (
        SELECT p.id, p.priority, p.created_at,
               COALESCE(p.user_id, '00000000-0000-0000-0000-000000000000'::uuid) AS grp
        FROM processing_jobs p
        -- (The key as a scalar subquery: the index then yields this key's jobs in order and stops at the
        -- LIMIT; joined to `head`, all of a 20,000-job flood was read and sorted, 15 ms against 0.1 ms.)
        WHERE p.status = 'pending' AND p.job_type = 'generate_image'
          AND generation_batch_key(p.metadata) = (SELECT key FROM head) AND p.run_after <= NOW()
        ORDER BY p.priority, p.created_at
        LIMIT %(limit)s * 4
    ) c
), room AS (
    -- How many more jobs each candidate user may run now (NULL: no cap).
    SELECT g.grp,
           COALESCE(CASE WHEN jsonb_typeof(u.quota_overrides->'max_running_jobs') = 'number'
                         THEN GREATEST(LEAST((u.quota_overrides->>'max_running_jobs')::numeric, 1e9), 1)::int END,
                    t.cap)
           - (SELECT count(*) FROM processing_jobs r
              WHERE r.status = 'processing'
                AND COALESCE(r.user_id, '00000000-0000-0000-0000-000000000000'::uuid) = g.grp) AS free
    FROM (SELECT DISTINCT grp FROM candidates) g
    LEFT JOIN users u ON u.id = g.grp
    LEFT JOIN unnest(%(tier_names)s::text[], %(tier_caps)s::int[]) AS t(name, cap) ON t.name = u.subscription_tier
    WHERE %(caps)s
), next AS (
    SELECT p.id FROM processing_jobs p
    JOIN candidates c ON c.id = p.id
    LEFT JOIN room ON room.grp = c.grp
    WHERE p.status = 'pending' AND (room.free IS NULL OR c.k <= room.free)
    ORDER BY c.priority, c.k, c.created_at
    LIMIT %(limit)s
    FOR UPDATE OF p SKIP LOCKED
)
UPDATE processing_jobs j
SET status = 'processing', leased_by = %(worker)s, lease_token = gen_random_uuid(),
    lease_expires_at = NOW() + make_interval(secs => %(lease_s)s), heartbeat_at = NOW(),
    attempts = j.attempts + 1, started_at = NOW(), progress_percent = 0, run_started = FALSE
WHERE j.id = ANY(ARRAY(SELECT id FROM next))
RETURNING j.*

-- extend_leases --
-- Heartbeat: renew the leases this worker still holds, store the latest progress, and mark the jobs whose
-- handler has started. Returns the jobs still held, with their cancel flag; a job missing from the answer
-- has lost its lease.
UPDATE processing_jobs j
SET lease_expires_at = NOW() + make_interval(secs => %(lease_s)s), heartbeat_at = NOW(),
    progress_percent = COALESCE(p.percent, j.progress_percent), progress = COALESCE(p.info, j.progress),
    run_started = j.run_started OR p.started
FROM unnest(%(ids)s::uuid[], %(tokens)s::uuid[], %(percents)s::smallint[], %(infos)s::jsonb[],
            %(started)s::boolean[])
     AS p(id, token, percent, info, started)
WHERE j.id = p.id AND j.lease_token = p.token AND j.status = 'processing'
RETURNING j.id, j.cancel_requested

-- mark_started --
-- A slot is about to run a prefetched job that a dead worker once held: record that it runs, so that if
-- it kills this worker too, the reaper spends its attempt. No row back: the lease was lost.
UPDATE processing_jobs SET run_started = TRUE
WHERE id = %(id)s AND lease_token = %(token)s AND status = 'processing'
RETURNING id

-- complete_jobs --
-- Mark leased jobs completed with their results, in one statement. Rows whose token no longer matches
-- (the lease was lost) are left alone and missing from the answer.
UPDATE processing_jobs j
SET status = 'completed', result = d.result, completed_at = NOW(), progress_percent = 100,
    lease_expires_at = NULL, error_message = NULL
FROM unnest(%(ids)s::uuid[], %(tokens)s::uuid[], %(results)s::jsonb[]) AS d(id, token, result)
WHERE j.id = d.id AND j.lease_token = d.token AND j.status = 'processing'
RETURNING j.id

-- fail_job --
-- A handler raised. Retry later (pending with run_after pushed back) while attempts remain and the
-- error is transient; otherwise the job has failed for good. A job whose cancel was requested meanwhile
-- is cancelled, never retried.
UPDATE processing_jobs
SET status = CASE WHEN cancel_requested THEN 'cancelled'
                  WHEN %(retry)s AND attempts < max_attempts THEN 'pending' ELSE 'failed' END,
    run_after = CASE WHEN %(retry)s AND attempts < max_attempts AND NOT cancel_requested
                     THEN NOW() + make_interval(secs => %(delay_s)s) ELSE run_after END,
    completed_at = CASE WHEN %(retry)s AND attempts < max_attempts AND NOT cancel_requested
                        THEN NULL ELSE NOW() END,
    errors = errors + 1, error_message = %(error)s, result = COALESCE(%(result)s, result),
    lease_expires_at = NULL, lease_token = NULL
WHERE id = %(id)s AND lease_token = %(token)s AND status = 'processing'
RETURNING id, status, run_after

-- finish_cancelled --
-- The handler stopped because the job was cancelled.
UPDATE processing_jobs
SET status = 'cancelled', completed_at = NOW(), lease_expires_at = NULL, lease_token = NULL,
    result = COALESCE(%(result)s, result)
WHERE id = %(id)s AND lease_token = %(token)s AND status = 'processing'
RETURNING id

-- release_jobs --
-- Hand leased jobs back to the queue without spending an attempt (shutdown, preemption, prefetched
-- jobs never started); a job whose cancel was requested meanwhile is cancelled instead. The status
-- change wakes other workers through the trigger.
UPDATE processing_jobs j
SET status = CASE WHEN j.cancel_requested THEN 'cancelled' ELSE 'pending' END,
    completed_at = CASE WHEN j.cancel_requested THEN NOW() END,
    attempts = GREATEST(j.attempts - 1, 0), leased_by = NULL, lease_token = NULL,
    lease_expires_at = NULL, run_after = NOW(), result = COALESCE(r.result, j.result)
FROM unnest(%(ids)s::uuid[], %(tokens)s::uuid[], %(results)s::jsonb[]) AS r(id, token, result)
WHERE j.id = r.id AND j.lease_token = r.token AND j.status = 'processing'
RETURNING j.id

-- reap_expired --
-- Jobs whose lease expired: their worker died or hung. A job that had started goes back to pending, or
-- fails when its attempts are spent (a job that kills every worker must not loop forever), counted as
-- a crash. A job the worker held but never started goes back without spending its attempt (its error
-- text is left as it was), counted in unstarted_reaps.
WITH expired AS (
    -- SKIP LOCKED: a row another reaper (or its worker, finishing late) holds is left for the next run.
    SELECT id, run_started AS ran FROM processing_jobs
    WHERE status = 'processing' AND lease_expires_at < NOW()
    FOR UPDATE SKIP LOCKED
)
UPDATE processing_jobs j
SET status = CASE WHEN j.cancel_requested THEN 'cancelled'
                  WHEN e.ran AND j.attempts >= j.max_attempts THEN 'failed' ELSE 'pending' END,
    completed_at = CASE WHEN j.cancel_requested OR (e.ran AND j.attempts >= j.max_attempts) THEN NOW() END,
    attempts = CASE WHEN e.ran THEN j.attempts ELSE GREATEST(j.attempts - 1, 0) END,
    error_message = CASE WHEN e.ran
        THEN concat('lease expired: worker ', COALESCE(j.leased_by, '(unknown)'),
                    ' stopped heartbeating while running it (attempt ', j.attempts, ' of ', j.max_attempts, ')')
        ELSE j.error_message END,
    crashes = j.crashes + e.ran::int, unstarted_reaps = j.unstarted_reaps + (NOT e.ran)::int,
    run_started = FALSE, lease_token = NULL, lease_expires_at = NULL, run_after = NOW()
FROM expired e
WHERE j.id = e.id
RETURNING j.id, j.status, e.ran AS started, j.leased_by

-- cancel_job --
-- Cancel: a pending job is cancelled at once; a running one is asked to stop (its worker sees the flag
-- through NOTIFY or the next heartbeat). In SET, `status` is the old value.
UPDATE processing_jobs
SET status = CASE WHEN status = 'pending' THEN 'cancelled' ELSE status END,
    completed_at = CASE WHEN status = 'pending' THEN NOW() ELSE completed_at END,
    cancel_requested = TRUE
WHERE id = %(id)s AND status IN ('pending', 'processing')
RETURNING id, status

-- retry_job --
-- Run a failed or cancelled job again, with a fresh budget of attempts.
UPDATE processing_jobs
SET status = 'pending', attempts = 0, run_after = NOW(), cancel_requested = FALSE, completed_at = NULL,
    lease_token = NULL, leased_by = NULL, progress_percent = 0
WHERE id = %(id)s AND status IN ('failed', 'cancelled')
RETURNING id, status

-- set_priority --
-- Change the priority of a job that has not finished.
UPDATE processing_jobs SET priority = %(priority)s
WHERE id = %(id)s AND status IN ('pending', 'processing')
RETURNING id, priority

-- get_job --
-- One job by id.
SELECT * FROM processing_jobs WHERE id = %(id)s

-- list_jobs --
-- Recent jobs, newest first, optionally filtered by status and type.
SELECT * FROM processing_jobs
WHERE (%(status)s::text IS NULL OR status = %(status)s) AND (%(job_type)s::text IS NULL OR job_type = %(job_type)s)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s

-- should_yield --
-- Preemption test for a long job: should it hand its worker to more urgent work? Only as many long jobs
-- yield as there are urgent jobs that no idle worker will take, so one waiting illustration does not
-- stop every training run in the fleet.
WITH waiting AS (
    -- Urgent: of the given types, strictly better priority, runnable for longer than wait_s (counted
    -- from when it became runnable, so an old retried job does not count as having waited).
    SELECT COUNT(*) AS n FROM processing_jobs
    WHERE status = 'pending' AND run_after <= NOW() AND job_type = ANY(%(types)s)
      AND priority < %(priority)s
      AND GREATEST(created_at, run_after) < NOW() - make_interval(secs => %(wait_s)s)
), idle AS (
    -- Live workers with nothing to do that serve one of those types: they will take the work anyway.
    SELECT COUNT(*) AS n FROM workers
    WHERE status = 'running' AND cardinality(current_job_ids) = 0 AND job_types && %(types)s::text[]
      AND heartbeat_at > NOW() - make_interval(secs => %(alive_s)s)
), ahead AS (
    -- Long jobs of this type that yield before this one: worse priority first, then the latest started.
    SELECT COUNT(*) AS n FROM processing_jobs
    WHERE status = 'processing' AND job_type = %(job_type)s AND id <> %(id)s
      AND (priority > %(priority)s
           OR (priority = %(priority)s AND started_at > %(started_at)s)
           OR (priority = %(priority)s AND started_at = %(started_at)s AND id > %(id)s))
)
SELECT ahead.n < waiting.n - idle.n AS yield FROM waiting, idle, ahead

-- register_worker --
-- A worker announces itself (or comes back under the same id).
INSERT INTO workers (id, host, pid, job_types, device, concurrency)
VALUES (%(id)s, %(host)s, %(pid)s, %(job_types)s, %(device)s, %(concurrency)s)
ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, job_types = EXCLUDED.job_types,
    device = EXCLUDED.device, concurrency = EXCLUDED.concurrency, status = 'running',
    started_at = NOW(), heartbeat_at = NOW()

-- worker_heartbeat --
-- The worker is alive; these are the jobs it runs; counters since the last beat; what it has resident
-- (the models and LoRAs its leases prefer, for admins).
UPDATE workers
SET heartbeat_at = NOW(), current_job_ids = %(job_ids)s::uuid[], status = %(status)s,
    jobs_completed = jobs_completed + %(completed)s, jobs_failed = jobs_failed + %(failed)s,
    resident = %(resident)s
WHERE id = %(id)s

-- worker_session --
-- A worker's queue connection always walks the queue index in order. Right after a bulk insert, before
-- autovacuum has analyzed the table, the planner believes few jobs are pending and picks a bitmap scan
-- that reads and sorts the whole backlog on every lease (measured: 15-25% of drain throughput).
SET enable_bitmapscan = off

-- listen_for_work --
-- Subscribe to new runnable jobs and to cancellations of running ones (see the triggers).
LISTEN enchant_jobs; LISTEN enchant_cancel

-- runnable_probe --
-- An idle worker's poll: is anything of its types runnable? One index-only probe of the partial index
-- idx_processing_jobs_runnable; the worker leases only when it says yes.
SELECT EXISTS (
    SELECT 1 FROM processing_jobs
    WHERE status = 'pending' AND job_type = ANY(%(types)s) AND run_after <= NOW()
) AS runnable
