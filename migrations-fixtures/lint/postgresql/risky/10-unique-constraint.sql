-- ADD CONSTRAINT UNIQUE builds its index under ACCESS EXCLUSIVE (reads blocked too).
ALTER TABLE users ADD CONSTRAINT users_name_unique UNIQUE (name);
