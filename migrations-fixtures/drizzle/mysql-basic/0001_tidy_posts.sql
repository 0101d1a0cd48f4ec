CREATE TABLE `posts` (
	`id` int AUTO_INCREMENT NOT NULL,
	`user_id` integer NOT NULL,
	`title` varchar(200) NOT NULL,
	CONSTRAINT `posts_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE INDEX `posts_user_idx` ON `posts` (`user_id`);