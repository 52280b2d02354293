-- Each ticket's share of its reservation's amount, so a refund of some of a
-- reservation's tickets gives back exactly their money (the shares add up to
-- the amount). NULL on tickets confirmed before: an even split stands in.
ALTER TABLE tickets ADD COLUMN price_minor BIGINT CHECK (price_minor >= 0);
-- The refund (the payment service's refund id) that voided a ticket: its
-- retry finds the ticket void by itself and answers the same; any other
-- refund of that ticket is refused.
ALTER TABLE tickets ADD COLUMN voided_by TEXT;
