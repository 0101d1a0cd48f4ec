-- migrate:up
CREATE TABLE after_broken (id INTEGER PRIMARY KEY);
-- migrate:down
DROP TABLE after_broken;
