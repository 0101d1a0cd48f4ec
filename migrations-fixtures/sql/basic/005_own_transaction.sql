BEGIN;
INSERT INTO users (id, name) VALUES (1, 'ada');
INSERT INTO users (id, name) VALUES (2, 'grace');
COMMIT;
