-- Drops a schema and everything in it.
DROP SCHEMA legacy CASCADE;
