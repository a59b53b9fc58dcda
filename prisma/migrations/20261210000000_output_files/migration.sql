-- Batch prediction into output files (issue 17). An inference job over a dataset may ask for
-- `output` ({format, include_inputs}): its rows are written to a file in chunks, each committed
-- with the job's checkpoint, so that a worker killed mid-way resumes from the last chunk.
ALTER TABLE "jobs" ADD COLUMN "output" JSONB;

-- A file: a batch job's output (one per job), readable once `ready`. Its bytes count towards the
-- tenant's storage from the chunk that wrote them; `expires_at` is set when it is finished.
CREATE TABLE "files" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "purpose" TEXT NOT NULL DEFAULT 'batch_output',
    "job_id" TEXT,
    "format" TEXT NOT NULL,
    "content_type" TEXT NOT NULL,
    "include_inputs" BOOLEAN NOT NULL DEFAULT false,
    "version" INTEGER,
    "status" TEXT NOT NULL DEFAULT 'writing',
    "bytes" BIGINT NOT NULL DEFAULT 0,
    "rows" INTEGER NOT NULL DEFAULT 0,
    "sha256" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expires_at" TIMESTAMPTZ(3),

    CONSTRAINT "files_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "files_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "files_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE UNIQUE INDEX "files_job_id_key" ON "files"("job_id");
CREATE INDEX "files_tenant_id_created_at_idx" ON "files"("tenant_id", "created_at");
CREATE INDEX "files_expires_at_idx" ON "files"("expires_at");

-- A file's content in order: chunk `seq` holds rows [first_row, first_row + rows) at byte_offset.
CREATE TABLE "file_chunks" (
    "file_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "first_row" INTEGER NOT NULL,
    "rows" INTEGER NOT NULL,
    "byte_offset" BIGINT NOT NULL,
    "bytes" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "file_chunks_pkey" PRIMARY KEY ("file_id", "seq"),
    CONSTRAINT "file_chunks_file_id_fkey" FOREIGN KEY ("file_id") REFERENCES "files"("id") ON DELETE CASCADE ON UPDATE CASCADE
);
-- Stored as written (no pglz): a batch job writes tens of MB a second and a Range read then
-- reads only the TOAST pages it needs; the bytes counted are the content's bytes either way.
ALTER TABLE "file_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL;

-- aiaas_admit_jobs writes `output` too; otherwise unchanged.
DROP FUNCTION aiaas_admit_jobs(JSONB);

CREATE FUNCTION aiaas_admit_jobs(p_jobs JSONB)
RETURNS TABLE (admit_ord INTEGER, admit_refused TEXT, admit_count DOUBLE PRECISION, admit_running INTEGER, admit_job jobs)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    v_tenants TEXT[];
    v_queued BIGINT[];
    v_running INTEGER[];
    v_runs INTEGER[] := '{}';
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
        RETURNING c.tenant_id, c.queued, c.running
    )
    SELECT array_agg(l.tenant_id ORDER BY l.tenant_id), array_agg(l.queued::bigint ORDER BY l.tenant_id), array_agg(l.running ORDER BY l.tenant_id)
      INTO v_tenants, v_queued, v_running FROM locked l;
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
        v_runs := v_runs || coalesce(v_running[i], 0);
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
            inputs JSONB, explain BOOLEAN, webhook_url TEXT, webhook_events TEXT[], max_attempts INTEGER, output JSONB)
         WHERE r.ord = ANY(v_accepted)
    ), inserted AS (
        INSERT INTO jobs AS j (id, tenant_id, type, model_id, version, alias, dataset_id, hyperparameters, architecture, base_version,
                               accelerator, metadata, inputs, explain, webhook_url, webhook_events, max_attempts, output, event_seq, updated_at)
        SELECT r.id, r.tenant_id, r.type, r.model_id, r.version, r.alias, r.dataset_id, r.hyperparameters, r.architecture, r.base_version,
               r.accelerator, r.metadata, r.inputs, r.explain, r.webhook_url, r.webhook_events, r.max_attempts, r.output, 1, now()
          FROM input r ORDER BY r.ord
        RETURNING j
    ), events AS (
        INSERT INTO job_events (id, job_id, seq, type, data)
        SELECT r.event_id, r.id, 1, 'job.queued', '{}'::jsonb FROM input r ORDER BY r.ord
    )
    SELECT d.ord, d.refused, d.count, d.running, n.j
      FROM unnest(v_ords, v_refused, v_counts, v_runs) AS d(ord, refused, count, running)
      LEFT JOIN input r ON r.ord = d.ord
      LEFT JOIN inserted n ON (n.j).id = r.id
     ORDER BY d.ord;
END
$$;
