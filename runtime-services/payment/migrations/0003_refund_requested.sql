-- A refund the payment service started and has not seen come back: set before
-- the ticket service voids the tickets and cleared only when it refuses, so a
-- provider (or ticket service) that fails after the tickets are voided leaves
-- a refund the reconciler finishes, never voided tickets with the money kept.
ALTER TABLE payments ADD COLUMN refund_requested_at TIMESTAMPTZ;
CREATE INDEX payments_refund_owed ON payments (updated_at)
    WHERE status = 'captured' AND refund_requested_at IS NOT NULL;
