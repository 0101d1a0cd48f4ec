-- The running application still reads the old column name.
ALTER TABLE "users" RENAME COLUMN "name" TO "fullName";
