-- A bigserial column fills every row from a sequence: table rewrite.
ALTER TABLE orders ADD COLUMN seq bigserial;
