-- A NOT NULL column without a default on a 200,000-row table: fails.
ALTER TABLE "users" ADD COLUMN "tenantId" TEXT NOT NULL;
