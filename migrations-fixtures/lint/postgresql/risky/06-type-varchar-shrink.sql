-- Shrinking a varchar rewrites the table and fails on longer values.
ALTER TABLE "users" ALTER COLUMN "name" TYPE varchar(50);
