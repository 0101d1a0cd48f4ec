BEGIN;
INSERT INTO accounts (id) VALUES (1);
INSERT INTO missing_table (id) VALUES (1);
COMMIT;
