-- A plain CREATE INDEX on 2,000,000 rows blocks writes for the whole build.
CREATE INDEX "orders_created_at_idx" ON "orders" ("created_at");
