-- Its own transaction, so it runs as written (not inside the runner's) and fails
-- outside any transaction the runner could roll back: the failure is recorded.
BEGIN;

-- CreateTable
CREATE TABLE "Tag" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,

    CONSTRAINT "Tag_pkey" PRIMARY KEY ("id")
);

-- AlterTable
ALTER TABLE "DoesNotExist" ADD COLUMN "x" INTEGER;

COMMIT;
