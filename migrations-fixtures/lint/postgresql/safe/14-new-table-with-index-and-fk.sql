-- Everything on a table created here: empty, nothing to lock for long.
CREATE TABLE "invoices" (
    "id" BIGSERIAL NOT NULL,
    "userId" BIGINT NOT NULL,
    "total" DECIMAL(65,30) NOT NULL,
    CONSTRAINT "invoices_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "invoices_userId_idx" ON "invoices"("userId");

ALTER TABLE "invoices" ADD CONSTRAINT "invoices_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
