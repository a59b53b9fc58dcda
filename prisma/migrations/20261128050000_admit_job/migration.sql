-- Job admission in one round trip: the per-tenant lock, then the quota checks and the inserts.
-- A VOLATILE plpgsql function gives each statement a fresh snapshot, so the counts taken after
-- the lock see every job committed by whoever held it before: two submissions never both see
-- room for one more job. The lock is the one JobRepository.create takes ('jobs:' || tenant).
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
                      accelerator, metadata, inputs, explain, webhook_url, webhook_events, max_attempts, updated_at)
    VALUES (p_id, p_tenant, p_type, p_model, p_version, p_alias, p_dataset, p_hyperparameters, p_architecture, p_base_version,
            p_accelerator, p_metadata, p_inputs, p_explain, p_webhook_url, p_webhook_events, p_max_attempts, now());
    INSERT INTO job_events (id, job_id, type, data) VALUES (p_event_id, p_id, 'job.queued', '{}'::jsonb);
    RETURN QUERY SELECT NULL::TEXT, n, c;
END
$$;
