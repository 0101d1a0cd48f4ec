-- timestamp to timestamptz rewrites the table (unless the session time zone is UTC).
ALTER TABLE "orders" ALTER COLUMN "created_at" TYPE timestamptz;
