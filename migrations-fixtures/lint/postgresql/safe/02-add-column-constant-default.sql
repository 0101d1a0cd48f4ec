-- A constant default is kept in the catalog (PostgreSQL 11+): no rewrite.
ALTER TABLE orders ADD COLUMN currency text NOT NULL DEFAULT 'EUR';
