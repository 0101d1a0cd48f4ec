CREATE TABLE posts (
    id INT PRIMARY KEY,
    user_id INT NOT NULL
);
