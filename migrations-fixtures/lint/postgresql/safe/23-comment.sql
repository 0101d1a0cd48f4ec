-- A comment.
COMMENT ON COLUMN users.name IS 'display name';
