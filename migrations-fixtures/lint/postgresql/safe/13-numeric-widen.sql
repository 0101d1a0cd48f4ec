-- numeric(10,2) to numeric(12,2) keeps the scale: no rewrite.
ALTER TABLE orders ALTER COLUMN total TYPE numeric(12,2);
