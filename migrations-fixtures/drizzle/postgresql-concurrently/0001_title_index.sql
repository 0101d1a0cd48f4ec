CREATE INDEX CONCURRENTLY "posts_title_idx" ON "posts" ("title");
--> statement-breakpoint
ALTER TABLE "does_not_exist" ADD COLUMN "x" integer;