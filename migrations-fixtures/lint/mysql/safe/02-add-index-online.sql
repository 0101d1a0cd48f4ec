-- Built in place with concurrent reads and writes.
CREATE INDEX `users_name_idx` ON `users`(`name`);
