-- AlterTable
ALTER TABLE "idempotency_records" ADD COLUMN "response_headers" JSONB;
