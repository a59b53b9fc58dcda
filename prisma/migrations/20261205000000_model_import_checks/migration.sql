-- CreateTable: an imported model waiting for a worker's load check; never visible as a version
CREATE TABLE "staged_imports" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "model_id" TEXT NOT NULL,
    "artifact" BYTEA NOT NULL,
    "outcome" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "staged_imports_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "staged_imports_tenant_id_created_at_idx" ON "staged_imports"("tenant_id", "created_at");

-- AddForeignKey
ALTER TABLE "staged_imports" ADD CONSTRAINT "staged_imports_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE CASCADE ON UPDATE CASCADE;
