-- Built concurrently: reads and writes go on.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "orders_note_idx" ON "orders" ("note");
