-- An index on 200 rows.
CREATE INDEX "User_name_idx" ON "User"("name");
