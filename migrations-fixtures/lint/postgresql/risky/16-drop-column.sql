-- Drops a column and its data.
ALTER TABLE "users" DROP COLUMN "status";
