-- Ticket service schema. One database per ticket service (per Event): the
-- seed shared its catalog and ticket databases, and a schema change in one
-- broke the other.

CREATE TABLE events (
    id TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    settings JSONB NOT NULL,
    settings_hash TEXT NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE sections (
    event_id TEXT NOT NULL REFERENCES events (id),
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('seated', 'standing')),
    rows_count INTEGER,
    seats_per_row INTEGER,
    capacity INTEGER NOT NULL CHECK (capacity >= 0),
    price_minor BIGINT NOT NULL CHECK (price_minor >= 0),
    currency TEXT NOT NULL,
    -- A section removed from the Event spec is retired, never deleted: its
    -- sold tickets stay valid.
    retired BOOLEAN NOT NULL DEFAULT false,
    PRIMARY KEY (event_id, id)
);

-- One row per numbered seat. `version` is the optimistic-lock counter of the
-- seed's second protection; `fencing_token` the token of the Redis lock under
-- which the seat was held, checked again at confirm (third protection).
CREATE TABLE seats (
    event_id TEXT NOT NULL,
    seat_id TEXT NOT NULL,
    section_id TEXT NOT NULL,
    row_no INTEGER NOT NULL,
    seat_no INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'available'
        CHECK (status IN ('available', 'held', 'sold', 'retired')),
    version BIGINT NOT NULL DEFAULT 0,
    hold_id UUID,
    fencing_token BIGINT,
    PRIMARY KEY (event_id, seat_id),
    FOREIGN KEY (event_id, section_id) REFERENCES sections (event_id, id),
    CHECK ((status IN ('held', 'sold')) = (hold_id IS NOT NULL))
);
CREATE INDEX seats_by_section_status ON seats (event_id, section_id, status);

-- Standing sections are counted, not numbered.
CREATE TABLE standing_inventory (
    event_id TEXT NOT NULL,
    section_id TEXT NOT NULL,
    capacity INTEGER NOT NULL,
    held INTEGER NOT NULL DEFAULT 0,
    sold INTEGER NOT NULL DEFAULT 0,
    version BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, section_id),
    FOREIGN KEY (event_id, section_id) REFERENCES sections (event_id, id),
    -- The database itself refuses an oversell of a standing section.
    CHECK (held >= 0 AND sold >= 0 AND held + sold <= capacity)
);

CREATE TABLE holds (
    id UUID PRIMARY KEY,
    event_id TEXT NOT NULL REFERENCES events (id),
    user_id TEXT NOT NULL,
    section_id TEXT,
    seat_ids TEXT[] NOT NULL DEFAULT '{}',
    quantity INTEGER NOT NULL CHECK (quantity > 0),
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    fencing_token BIGINT NOT NULL,
    status TEXT NOT NULL
        CHECK (status IN ('active', 'confirmed', 'released', 'expired', 'canceled')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    payment_id TEXT,
    closed_at TIMESTAMPTZ
);
CREATE INDEX holds_active_by_expiry ON holds (expires_at) WHERE status = 'active';
CREATE INDEX holds_by_user ON holds (event_id, user_id) WHERE status IN ('active', 'confirmed');

CREATE TABLE reservations (
    id UUID PRIMARY KEY,
    hold_id UUID NOT NULL UNIQUE REFERENCES holds (id),
    -- One payment confirms at most one reservation, whichever path gets there first.
    payment_id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('confirmed', 'canceled')),
    confirmed_via TEXT NOT NULL CHECK (confirmed_via IN ('rest', 'kafka')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    canceled_at TIMESTAMPTZ
);

CREATE TABLE tickets (
    id UUID PRIMARY KEY,
    reservation_id UUID NOT NULL REFERENCES reservations (id),
    event_id TEXT NOT NULL,
    section_id TEXT NOT NULL,
    seat_id TEXT,
    owner_user_id TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('valid', 'void')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The last line of defence: two valid tickets for one seat cannot exist.
CREATE UNIQUE INDEX tickets_one_valid_per_seat ON tickets (event_id, seat_id)
    WHERE status = 'valid' AND seat_id IS NOT NULL;
CREATE INDEX tickets_by_owner ON tickets (event_id, owner_user_id) WHERE status = 'valid';

-- `POST holds` with an `Idempotency-Key`: the first answer, replayed.
CREATE TABLE idempotency_keys (
    user_id TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status_code INTEGER,
    response JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);

CREATE TABLE ticket_transfers (
    id UUID PRIMARY KEY,
    ticket_id UUID NOT NULL REFERENCES tickets (id),
    from_user_id TEXT NOT NULL,
    to_user_id TEXT NOT NULL,
    transferred_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Fed by the `transfer-events` consumer: the ownership history of each
-- ticket, as the rest of the platform saw it (the seed produced
-- transfer-events and nothing ever read them).
CREATE TABLE ticket_ownership_log (
    message_id TEXT PRIMARY KEY,
    ticket_id UUID NOT NULL,
    from_user_id TEXT NOT NULL,
    to_user_id TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX ticket_ownership_log_by_ticket ON ticket_ownership_log (ticket_id, occurred_at);

-- Payment events the ticket service could not apply (the hold had expired):
-- the payment service's reconciler refunds them; kept for audit.
CREATE TABLE unapplied_payments (
    payment_id TEXT PRIMARY KEY,
    hold_id UUID NOT NULL,
    reason TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
