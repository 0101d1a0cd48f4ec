-- Deletes every row.
DELETE FROM `orders`;
