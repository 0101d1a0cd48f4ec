-- gen_random_uuid() is evaluated per row: 2,000,000 rows rewritten.
ALTER TABLE orders ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
