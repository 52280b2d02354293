-- Payment service schema (its own database: never shared with the ticket service).

CREATE TABLE payments (
    id UUID PRIMARY KEY,
    event_id TEXT NOT NULL,
    hold_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    -- Always the ticket service's quote, never the buyer's figure.
    amount_minor BIGINT NOT NULL CHECK (amount_minor >= 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('created', 'authorized', 'captured', 'failed', 'canceled', 'refunded')),
    provider TEXT NOT NULL,
    provider_ref TEXT,
    payment_method TEXT,
    failure_reason TEXT,
    reservation_id TEXT,
    idempotency_key TEXT,
    request_hash TEXT,
    traceparent TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    confirm_started_at TIMESTAMPTZ,
    captured_at TIMESTAMPTZ
);
CREATE UNIQUE INDEX payments_idempotency ON payments (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
-- One live payment per hold: a second one would take money twice for one order.
CREATE UNIQUE INDEX payments_one_live_per_hold ON payments (hold_id)
    WHERE status IN ('created', 'authorized', 'captured');
CREATE INDEX payments_by_status ON payments (status, updated_at);

-- Every transition, in order: the audit trail of a money movement.
CREATE TABLE payment_transitions (
    id BIGSERIAL PRIMARY KEY,
    payment_id UUID NOT NULL REFERENCES payments (id),
    from_status TEXT,
    to_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX payment_transitions_by_payment ON payment_transitions (payment_id, id);

-- Webhook deliveries already applied (a provider retries; duplicates are harmless).
CREATE TABLE webhook_events (
    provider TEXT NOT NULL,
    provider_event_id TEXT NOT NULL,
    payment_id UUID,
    kind TEXT NOT NULL,
    outcome TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, provider_event_id)
);
