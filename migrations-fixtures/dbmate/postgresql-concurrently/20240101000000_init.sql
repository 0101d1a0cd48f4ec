-- migrate:up
CREATE TABLE posts (id SERIAL PRIMARY KEY, title TEXT NOT NULL);
-- migrate:down
DROP TABLE posts;
