-- PostgreSQL refuses this inside a transaction block.
CREATE INDEX CONCURRENTLY posts_title_idx ON posts (title);
