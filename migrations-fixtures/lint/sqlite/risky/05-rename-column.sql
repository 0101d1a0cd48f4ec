-- The running application still reads the old name.
ALTER TABLE "User" RENAME COLUMN "name" TO "fullName";
