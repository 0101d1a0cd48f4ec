-- The unique index is built concurrently, then attached.
CREATE UNIQUE INDEX CONCURRENTLY users_name_idx ON users (name);
ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE USING INDEX users_name_idx;
