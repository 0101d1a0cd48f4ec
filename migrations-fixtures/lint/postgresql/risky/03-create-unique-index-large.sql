-- A unique index built without CONCURRENTLY on 200,000 rows blocks writes.
CREATE UNIQUE INDEX "users_name_key" ON "users" ("name");
