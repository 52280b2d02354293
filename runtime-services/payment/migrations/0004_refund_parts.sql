-- Refunds of some tickets of a payment ("refund parts"): what each part is,
-- and how much of the payment has gone back. A part is owed from before the
-- ticket service voids its tickets until the provider gave its money back
-- (or refused when the ticket service refused: nothing moved).
ALTER TABLE payments ADD COLUMN refunded_minor BIGINT NOT NULL DEFAULT 0
    CHECK (refunded_minor >= 0 AND refunded_minor <= amount_minor);
CREATE TABLE refund_parts (
    id UUID PRIMARY KEY,
    payment_id UUID NOT NULL REFERENCES payments (id),
    -- The tickets named, sorted; empty: every ticket left.
    ticket_ids TEXT[] NOT NULL,
    -- Their shares of the payment, as the ticket service answered on voiding them.
    amount_minor BIGINT CHECK (amount_minor > 0),
    reason TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('owed', 'refunded', 'refused')),
    provider_ref TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    refunded_at TIMESTAMPTZ
);
-- One part in flight per payment: parts go back one after another, so the
-- refunded total never races.
CREATE UNIQUE INDEX refund_parts_one_owed ON refund_parts (payment_id) WHERE status = 'owed';
CREATE INDEX refund_parts_owed ON refund_parts (updated_at) WHERE status = 'owed';
CREATE INDEX refund_parts_by_payment ON refund_parts (payment_id, created_at);
