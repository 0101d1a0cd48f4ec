-- Deletes every user.
DELETE FROM "users";
