-- Touches nearly every one of 2,000,000 rows in one transaction.
UPDATE orders SET note = trim(note) WHERE note IS NOT NULL;
