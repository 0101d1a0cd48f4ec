-- dbdeploy:no-transaction
ALTER TABLE posts ADD COLUMN slug TEXT;
