-- dbdeploy:no-transaction
-- Runs statement by statement, outside dbdeploy's transaction.
ALTER TABLE posts ADD COLUMN views INT NOT NULL DEFAULT 0;
ALTER TABLE posts ADD COLUMN slug TEXT;
