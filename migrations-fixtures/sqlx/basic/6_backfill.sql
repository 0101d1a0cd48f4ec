BEGIN;
INSERT INTO users (id, email) VALUES (1, 'ADA@EXAMPLE.COM');
UPDATE users SET email = lower(email);
COMMIT;
