CREATE TABLE tags (
    id INT PRIMARY KEY
);
INSERT INTO does_not_exist (id) VALUES (1);
