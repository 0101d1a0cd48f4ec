-- Seed data, saved on Windows.
INSERT INTO users (id, name) VALUES (1, 'ada');
