-- Inserts reference data.
INSERT INTO countries (code, name) VALUES ('XK', 'Kosovo');
