-- The enum must exist first.
CREATE TYPE status AS ENUM ('active', 'inactive');
-- migrate:up
CREATE TABLE users (id INTEGER PRIMARY KEY, status status);
-- migrate:down
DROP TABLE users;
