-- migrate:up
CREATE TABLE half (id INTEGER PRIMARY KEY);
INSERT INTO missing_table (id) VALUES (1);
-- migrate:down
DROP TABLE half;
