-- now() is stable: evaluated once, no rewrite.
ALTER TABLE users ADD COLUMN "updatedAt" timestamptz DEFAULT now();
