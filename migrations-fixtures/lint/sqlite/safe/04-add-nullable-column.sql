-- A nullable column.
ALTER TABLE "User" ADD COLUMN "avatar" TEXT;
