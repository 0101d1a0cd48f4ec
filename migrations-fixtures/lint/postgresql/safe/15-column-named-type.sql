-- A column named type: no type change.
ALTER TABLE users ALTER COLUMN type SET DEFAULT 'person';
ALTER TABLE orders ADD COLUMN "type" text;
