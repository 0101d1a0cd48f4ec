-- drizzle-kit's __new_ rebuild keeping every column.
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_User` (
	`id` integer PRIMARY KEY NOT NULL,
	`name` text,
	`bio` text DEFAULT ''
);
--> statement-breakpoint
INSERT INTO `__new_User`("id", "name", "bio") SELECT "id", "name", "bio" FROM `User`;--> statement-breakpoint
DROP TABLE `User`;--> statement-breakpoint
ALTER TABLE `__new_User` RENAME TO `User`;--> statement-breakpoint
PRAGMA foreign_keys=ON;
