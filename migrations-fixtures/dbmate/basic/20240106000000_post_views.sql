-- migrate:up
ALTER TABLE posts ADD COLUMN views INTEGER NOT NULL DEFAULT 0;

-- migrate:down
ALTER TABLE posts DROP COLUMN views;
