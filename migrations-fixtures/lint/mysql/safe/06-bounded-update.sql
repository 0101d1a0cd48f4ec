-- Updates one row.
UPDATE `users` SET `status` = 'banned' WHERE `id` = 42;
