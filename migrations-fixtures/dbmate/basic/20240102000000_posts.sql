-- migrate:up
CREATE TABLE posts (
    id INTEGER PRIMARY KEY,
    title VARCHAR(255) NOT NULL,
    author_id INTEGER NOT NULL REFERENCES users (id)
);

    -- migrate:down
DROP TABLE posts;
