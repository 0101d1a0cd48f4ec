-- varchar(100) to varchar(200) is binary-coercible: no rewrite.
ALTER TABLE "users" ALTER COLUMN "name" SET DATA TYPE VARCHAR(200);
