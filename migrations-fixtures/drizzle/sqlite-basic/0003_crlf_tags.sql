CREATE TABLE `tags` (
	`id` integer NOT NULL,
	`name` text
);
--> statement-breakpoint
INSERT INTO `tags` (`id`, `name`) VALUES (1, 'first');