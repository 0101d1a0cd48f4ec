-- A nullable column is a catalog change.
ALTER TABLE "users" ADD COLUMN "bio" TEXT;
