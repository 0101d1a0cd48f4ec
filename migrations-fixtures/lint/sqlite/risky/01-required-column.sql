-- SQLite refuses a NOT NULL column without a default.
ALTER TABLE "User" ADD COLUMN "age" INTEGER NOT NULL;
