-- A new enum type and a nullable column of it.
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
ALTER TABLE users ADD COLUMN mood mood;
