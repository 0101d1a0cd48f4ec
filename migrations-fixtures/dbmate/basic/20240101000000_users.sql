-- migrate:up
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email VARCHAR(255) NOT NULL
);

-- migrate:down
DROP TABLE users;
