-- Event numbers per job (1, 2, 3 …, no gaps) instead of one sequence shared by every tenant: the
-- SSE `id:` of GET /v1/jobs/{id}/stream showed the gaps other tenants' events made. Each writer of
-- an event takes the next number from `jobs.event_seq` in the UPDATE of the job row that its
-- transaction makes anyway (the row lock orders the events of one job); a rollback gives it back.

ALTER TABLE "jobs" ADD COLUMN "event_seq" INTEGER NOT NULL DEFAULT 0;

ALTER TABLE "job_events" ALTER COLUMN "seq" DROP DEFAULT;
DROP SEQUENCE "job_events_seq_seq";

-- Existing events keep their order, renumbered per job.
UPDATE "job_events" e SET "seq" = n.rn
  FROM (SELECT "id", row_number() OVER (PARTITION BY "job_id" ORDER BY "seq") AS rn FROM "job_events") n
 WHERE e."id" = n."id";
UPDATE "jobs" j SET "event_seq" = c.n
  FROM (SELECT "job_id", max("seq")::int AS n FROM "job_events" GROUP BY "job_id") c
 WHERE j."id" = c."job_id";

DROP INDEX "job_events_job_id_seq_idx";
CREATE UNIQUE INDEX "job_events_job_id_seq_key" ON "job_events"("job_id", "seq");

-- Admission writes the job with its first event, number 1.
CREATE OR REPLACE FUNCTION aiaas_admit_job(
    p_id TEXT, p_tenant TEXT, p_type "JobType", p_model TEXT, p_version INTEGER, p_alias TEXT, p_dataset TEXT,
    p_hyperparameters JSONB, p_architecture JSONB, p_base_version INTEGER, p_accelerator TEXT, p_metadata JSONB,
    p_inputs JSONB, p_explain BOOLEAN, p_webhook_url TEXT, p_webhook_events TEXT[], p_max_attempts INTEGER,
    p_event_id TEXT, p_max_queued INTEGER, p_max_compute DOUBLE PRECISION)
RETURNS TABLE (refused TEXT, queued INTEGER, spent DOUBLE PRECISION)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n INTEGER;
    c DOUBLE PRECISION;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('jobs:' || p_tenant));
    SELECT count(*) INTO n FROM jobs WHERE tenant_id = p_tenant AND status = 'queued';
    SELECT coalesce(sum(value), 0) INTO c FROM usage_counters
     WHERE tenant_id = p_tenant AND metric = 'compute_seconds' AND day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date;
    IF n >= p_max_queued THEN
        RETURN QUERY SELECT 'max_queued_jobs'::TEXT, n, c;
        RETURN;
    END IF;
    IF c >= p_max_compute THEN
        RETURN QUERY SELECT 'monthly_compute_seconds'::TEXT, n, c;
        RETURN;
    END IF;
    INSERT INTO jobs (id, tenant_id, type, model_id, version, alias, dataset_id, hyperparameters, architecture, base_version,
                      accelerator, metadata, inputs, explain, webhook_url, webhook_events, max_attempts, event_seq, updated_at)
    VALUES (p_id, p_tenant, p_type, p_model, p_version, p_alias, p_dataset, p_hyperparameters, p_architecture, p_base_version,
            p_accelerator, p_metadata, p_inputs, p_explain, p_webhook_url, p_webhook_events, p_max_attempts, 1, now());
    INSERT INTO job_events (id, job_id, seq, type, data) VALUES (p_event_id, p_id, 1, 'job.queued', '{}'::jsonb);
    RETURN QUERY SELECT NULL::TEXT, n, c;
END
$$;
