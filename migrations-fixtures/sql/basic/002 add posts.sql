-- A file name with spaces.
CREATE TABLE posts (
    id INT PRIMARY KEY,
    user_id INT NOT NULL
);
CREATE INDEX posts_user_id_idx ON posts (user_id);
