-- Drops a column and its data.
ALTER TABLE "User" DROP COLUMN "bio";
