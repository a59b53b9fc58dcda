-- Idempotency records belong to the key that made the request; the tenant is kept apart so that
-- erasing a tenant finds its records by index. Secrets in an answer are kept encrypted, apart from it.
ALTER TABLE "idempotency_records" ADD COLUMN "tenant_id" TEXT;
ALTER TABLE "idempotency_records" ADD COLUMN "response_sealed" TEXT;
ALTER TABLE "idempotency_records" ADD COLUMN "omitted_bytes" INTEGER;
CREATE INDEX "idempotency_records_tenant_id_idx" ON "idempotency_records"("tenant_id");
UPDATE "idempotency_records" SET "tenant_id" = "scope" WHERE "scope" LIKE 'ten\_%';

-- Listing keys now needs keys:read. Keys that could manage keys keep seeing them; the others lose a
-- listing they should never have had.
UPDATE "api_keys" SET "scopes" = array_append("scopes", 'keys:read')
 WHERE 'keys:write' = ANY("scopes") AND NOT ('keys:read' = ANY("scopes"));
