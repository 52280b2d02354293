-- The first answer to a create with an Idempotency-Key, replayed verbatim
-- (same status, same body) when the buyer retries with the same key.
ALTER TABLE payments
    ADD COLUMN idempotent_status SMALLINT,
    ADD COLUMN idempotent_body JSONB;
