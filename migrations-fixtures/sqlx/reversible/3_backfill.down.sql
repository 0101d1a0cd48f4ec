-- no-transaction
DELETE FROM users WHERE id = 1;
