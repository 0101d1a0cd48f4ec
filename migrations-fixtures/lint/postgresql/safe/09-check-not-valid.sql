-- A CHECK with NOT VALID is a catalog change.
ALTER TABLE orders ADD CONSTRAINT orders_total_positive CHECK (total >= 0) NOT VALID;
