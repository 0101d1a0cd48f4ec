CREATE TABLE "posts" (
	"id" serial PRIMARY KEY NOT NULL,
	"user_id" integer NOT NULL,
	"title" text NOT NULL
);
--> statement-breakpoint
CREATE INDEX "posts_user_idx" ON "posts" ("user_id");