-- Old table renamed away, new one created under the name, rows copied.
ALTER TABLE Post RENAME TO _Post_old;
CREATE TABLE Post (id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT);
INSERT INTO Post (id, title, body) SELECT id, title, body FROM _Post_old;
DROP TABLE _Post_old;
