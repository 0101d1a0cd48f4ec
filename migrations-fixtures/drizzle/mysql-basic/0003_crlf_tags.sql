CREATE TABLE `tags` (
	`id` integer NOT NULL,
	`name` varchar(100)
);
--> statement-breakpoint
INSERT INTO `tags` (`id`, `name`) VALUES (1, 'first');