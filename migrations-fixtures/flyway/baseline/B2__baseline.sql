-- The schema as of version 2, in one script (Flyway baseline migration).
CREATE TABLE users (
    id INT PRIMARY KEY,
    name VARCHAR(100) NOT NULL
);
CREATE TABLE posts (
    id INT PRIMARY KEY,
    user_id INT NOT NULL
);
INSERT INTO users (id, name) VALUES (1, 'from baseline');
