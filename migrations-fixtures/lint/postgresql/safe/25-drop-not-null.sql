-- Relaxing NOT NULL is a catalog change.
ALTER TABLE "orders" ALTER COLUMN "note" DROP NOT NULL;
