-- integer to bigint rewrites 2,000,000 rows under ACCESS EXCLUSIVE.
ALTER TABLE "orders" ALTER COLUMN "user_id" SET DATA TYPE BIGINT;
