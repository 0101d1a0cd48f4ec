INSERT INTO users (id, name, email) VALUES (1, 'ada', 'ada@example.com');
INSERT INTO users (id, name, email) VALUES (2, 'grace', NULL);
