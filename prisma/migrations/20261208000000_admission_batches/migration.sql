-- Admission in batches (issue 16): the API writes the submissions that arrive together in one
-- statement and one commit (aiaas_admit_jobs), and max_queued_jobs reads a counter instead of
-- count(*) over the tenant's queued jobs, which grew with the backlog.

-- Queued and running jobs per tenant, kept exact by the triggers below whatever statement changes
-- `jobs` (admission, sync predictions, transitions, deletes). Admission locks a tenant's row for
-- the rest of its transaction: that lock, not an advisory lock, serializes a tenant's admissions.
CREATE TABLE "tenant_job_counts" (
    "tenant_id" TEXT NOT NULL,
    "queued" INTEGER NOT NULL DEFAULT 0,
    "running" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "tenant_job_counts_pkey" PRIMARY KEY ("tenant_id")
);

ALTER TABLE "tenant_job_counts" ADD CONSTRAINT "tenant_job_counts_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- Inserted jobs, one statement at a time: one upsert per tenant that got queued or running rows,
-- in tenant order (as admission locks them). Rows inserted finished (sync predictions) touch nothing.
CREATE FUNCTION aiaas_job_counts_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO tenant_job_counts AS c (tenant_id, queued, running)
    SELECT n.tenant_id, count(*) FILTER (WHERE n.status = 'queued'), count(*) FILTER (WHERE n.status = 'running')
      FROM inserted_jobs n
     WHERE n.status IN ('queued', 'running')
     GROUP BY n.tenant_id
     ORDER BY n.tenant_id
    ON CONFLICT (tenant_id) DO UPDATE SET queued = c.queued + EXCLUDED.queued, running = c.running + EXCLUDED.running;
    RETURN NULL;
END
$$;

-- Deleted jobs (a tenant's deletion cascades to them), one statement at a time.
CREATE FUNCTION aiaas_job_counts_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM tenant_job_counts
      WHERE tenant_id IN (SELECT o.tenant_id FROM deleted_jobs o WHERE o.status IN ('queued', 'running'))
      ORDER BY tenant_id FOR UPDATE;
    UPDATE tenant_job_counts c SET queued = c.queued - d.queued, running = c.running - d.running
      FROM (SELECT o.tenant_id, count(*) FILTER (WHERE o.status = 'queued')::int AS queued,
                   count(*) FILTER (WHERE o.status = 'running')::int AS running
              FROM deleted_jobs o WHERE o.status IN ('queued', 'running') GROUP BY o.tenant_id) d
     WHERE c.tenant_id = d.tenant_id;
    RETURN NULL;
END
$$;

-- A change of status (or of tenant, which no code makes), one row at a time, at commit: the
-- transaction that starts, finishes or cancels a job holds the tenant's counter row only while it
-- commits, not for the rest of its work.
CREATE FUNCTION aiaas_job_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.tenant_id = NEW.tenant_id THEN
        UPDATE tenant_job_counts
           SET queued = queued + (NEW.status = 'queued')::int - (OLD.status = 'queued')::int,
               running = running + (NEW.status = 'running')::int - (OLD.status = 'running')::int
         WHERE tenant_id = NEW.tenant_id;
    ELSE
        UPDATE tenant_job_counts
           SET queued = queued - (OLD.status = 'queued')::int, running = running - (OLD.status = 'running')::int
         WHERE tenant_id = OLD.tenant_id;
        INSERT INTO tenant_job_counts AS c (tenant_id, queued, running)
        VALUES (NEW.tenant_id, (NEW.status = 'queued')::int, (NEW.status = 'running')::int)
        ON CONFLICT (tenant_id) DO UPDATE SET queued = c.queued + EXCLUDED.queued, running = c.running + EXCLUDED.running;
    END IF;
    RETURN NULL;
END
$$;

-- No job is written while the triggers are made and the counters filled: both or neither.
LOCK TABLE "jobs" IN SHARE ROW EXCLUSIVE MODE;

CREATE TRIGGER "jobs_counts_inserted" AFTER INSERT ON "jobs"
    REFERENCING NEW TABLE AS inserted_jobs FOR EACH STATEMENT EXECUTE FUNCTION aiaas_job_counts_inserted();
CREATE TRIGGER "jobs_counts_deleted" AFTER DELETE ON "jobs"
    REFERENCING OLD TABLE AS deleted_jobs FOR EACH STATEMENT EXECUTE FUNCTION aiaas_job_counts_deleted();
CREATE CONSTRAINT TRIGGER "jobs_counts_changed" AFTER UPDATE OF "status", "tenant_id" ON "jobs"
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN ((OLD.status IS DISTINCT FROM NEW.status AND (OLD.status IN ('queued', 'running') OR NEW.status IN ('queued', 'running')))
          OR OLD.tenant_id IS DISTINCT FROM NEW.tenant_id)
    EXECUTE FUNCTION aiaas_job_counts_changed();

INSERT INTO "tenant_job_counts" ("tenant_id", "queued", "running")
SELECT t."id", count(j."id") FILTER (WHERE j."status" = 'queued'), count(j."id") FILTER (WHERE j."status" = 'running')
  FROM "tenants" t LEFT JOIN "jobs" j ON j."tenant_id" = t."id" AND j."status" IN ('queued', 'running')
 GROUP BY t."id";

-- A batch of submissions, admitted in one statement. `p_jobs` is a JSON array of objects, one per
-- submission in arrival order: `ord` (its place in the batch), `id`, `event_id`, `tenant_id`, the
-- job's columns, and the limits it is admitted under (`max_queued`, `max_compute`). Each tenant's
-- counter row is locked (upserted, in tenant order, so that two batches never deadlock; the tenant
-- row first, so that a tenant's deletion and its admissions never wait for each other), then each
-- tenant's submissions are admitted in order while the tenant has fewer than `max_queued` queued
-- jobs and has used less than `max_compute` compute seconds this month (summed once per tenant).
-- Returns one row per submission: `admit_refused` null and `admit_job` the row written, or the
-- quota that refused it ('max_queued_jobs', 'monthly_compute_seconds'; 'tenant_missing' when the
-- tenant is gone) with `admit_count` the queued jobs or the compute seconds that refused it.
CREATE FUNCTION aiaas_admit_jobs(p_jobs JSONB)
RETURNS TABLE (admit_ord INTEGER, admit_refused TEXT, admit_count DOUBLE PRECISION, admit_job jobs)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_tenants TEXT[];
    v_queued BIGINT[];
    v_spent DOUBLE PRECISION[];
    v_ords INTEGER[] := '{}';
    v_refused TEXT[] := '{}';
    v_counts DOUBLE PRECISION[] := '{}';
    v_accepted INTEGER[] := '{}';
    s RECORD;
    i INTEGER;
BEGIN
    WITH locked AS (
        INSERT INTO tenant_job_counts AS c (tenant_id)
        SELECT t.id FROM tenants t
         WHERE t.id IN (SELECT DISTINCT x->>'tenant_id' FROM jsonb_array_elements(p_jobs) x)
         ORDER BY t.id
           FOR KEY SHARE OF t
        ON CONFLICT (tenant_id) DO UPDATE SET queued = c.queued
        RETURNING c.tenant_id, c.queued
    )
    SELECT array_agg(l.tenant_id ORDER BY l.tenant_id), array_agg(l.queued::bigint ORDER BY l.tenant_id) INTO v_tenants, v_queued FROM locked l;
    v_tenants := coalesce(v_tenants, '{}');
    -- After the lock: a statement of its own sees everything committed before it.
    SELECT array_agg(coalesce(u.spent, 0) ORDER BY t.tenant_id) INTO v_spent
      FROM unnest(v_tenants) AS t(tenant_id)
      LEFT JOIN (SELECT tenant_id, sum(value)::double precision AS spent FROM usage_counters
                  WHERE tenant_id = ANY(v_tenants) AND metric = 'compute_seconds'
                    AND day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date
                  GROUP BY tenant_id) u ON u.tenant_id = t.tenant_id;
    FOR s IN SELECT r.ord, r.tenant_id, r.max_queued, r.max_compute
               FROM jsonb_to_recordset(p_jobs) AS r(ord INTEGER, tenant_id TEXT, max_queued BIGINT, max_compute DOUBLE PRECISION)
              ORDER BY r.ord LOOP
        i := array_position(v_tenants, s.tenant_id);
        v_ords := v_ords || s.ord;
        IF i IS NULL THEN
            v_refused := v_refused || 'tenant_missing'::text;
            v_counts := v_counts || 0::double precision;
        ELSIF v_queued[i] >= s.max_queued THEN
            v_refused := v_refused || 'max_queued_jobs'::text;
            v_counts := v_counts || v_queued[i]::double precision;
        ELSIF v_spent[i] >= s.max_compute THEN
            v_refused := v_refused || 'monthly_compute_seconds'::text;
            v_counts := v_counts || v_spent[i];
        ELSE
            v_refused := v_refused || NULL::text;
            v_counts := v_counts || v_queued[i]::double precision;
            v_queued[i] := v_queued[i] + 1;
            v_accepted := v_accepted || s.ord;
        END IF;
    END LOOP;
    RETURN QUERY
    WITH input AS (
        SELECT r.* FROM jsonb_to_recordset(p_jobs) AS r(
            ord INTEGER, id TEXT, event_id TEXT, tenant_id TEXT, type "JobType", model_id TEXT, version INTEGER, alias TEXT,
            dataset_id TEXT, hyperparameters JSONB, architecture JSONB, base_version INTEGER, accelerator TEXT, metadata JSONB,
            inputs JSONB, explain BOOLEAN, webhook_url TEXT, webhook_events TEXT[], max_attempts INTEGER)
         WHERE r.ord = ANY(v_accepted)
    ), inserted AS (
        INSERT INTO jobs AS j (id, tenant_id, type, model_id, version, alias, dataset_id, hyperparameters, architecture, base_version,
                               accelerator, metadata, inputs, explain, webhook_url, webhook_events, max_attempts, event_seq, updated_at)
        SELECT r.id, r.tenant_id, r.type, r.model_id, r.version, r.alias, r.dataset_id, r.hyperparameters, r.architecture, r.base_version,
               r.accelerator, r.metadata, r.inputs, r.explain, r.webhook_url, r.webhook_events, r.max_attempts, 1, now()
          FROM input r ORDER BY r.ord
        RETURNING j
    ), events AS (
        INSERT INTO job_events (id, job_id, seq, type, data)
        SELECT r.event_id, r.id, 1, 'job.queued', '{}'::jsonb FROM input r ORDER BY r.ord
    )
    SELECT d.ord, d.refused, d.count, n.j
      FROM unnest(v_ords, v_refused, v_counts) AS d(ord, refused, count)
      LEFT JOIN input r ON r.ord = d.ord
      LEFT JOIN inserted n ON (n.j).id = r.id
     ORDER BY d.ord;
END
$$;

-- One submission at a time, under an advisory lock and with count(*): replaced by aiaas_admit_jobs.
DROP FUNCTION aiaas_admit_job(TEXT, TEXT, "JobType", TEXT, INTEGER, TEXT, TEXT, JSONB, JSONB, INTEGER, TEXT, JSONB, JSONB, BOOLEAN, TEXT, TEXT[], INTEGER, TEXT, INTEGER, DOUBLE PRECISION);
