-- Three risks in one statement: a dropped column, SET NOT NULL, a required column.
ALTER TABLE users DROP COLUMN type, ALTER COLUMN name SET NOT NULL, ADD COLUMN c text NOT NULL;
