-- A new table and its index.
CREATE TABLE "Tag" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL
);
CREATE UNIQUE INDEX "Tag_name_key" ON "Tag"("name");
