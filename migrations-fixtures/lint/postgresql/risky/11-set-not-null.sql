-- SET NOT NULL scans every row under ACCESS EXCLUSIVE and fails on NULLs.
ALTER TABLE users ALTER COLUMN name SET NOT NULL;
