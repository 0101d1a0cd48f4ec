-- CreateTable
CREATE TABLE "Never" (
    "id" SERIAL NOT NULL,
    "note" TEXT NOT NULL,

    CONSTRAINT "Never_pkey" PRIMARY KEY ("id")
);
