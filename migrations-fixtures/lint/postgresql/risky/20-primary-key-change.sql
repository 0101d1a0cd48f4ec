-- Replacing the primary key builds a new unique index under ACCESS EXCLUSIVE.
ALTER TABLE users DROP CONSTRAINT users_pkey, ADD PRIMARY KEY (id, email);
