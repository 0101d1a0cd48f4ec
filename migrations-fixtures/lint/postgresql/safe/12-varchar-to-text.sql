-- varchar to text is binary-coercible: no rewrite.
ALTER TABLE users ALTER COLUMN email TYPE text;
