-- A default is catalog only.
ALTER TABLE `users` ALTER COLUMN `status` SET DEFAULT 'active';
