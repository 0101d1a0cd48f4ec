-- Deletes every post.
DELETE FROM "Post";
