-- Claims take due deliveries `ORDER BY next_attempt_at, id`. The due index
-- had next_attempt_at alone, so every delivery due at the same instant (all
-- those of a burst of events committed together) had to be sorted by id on
-- each claim: with 50,000 of them, a claim cost a sort of 50,000 rows. With
-- the id in the index the claim reads the first rows in order.
CREATE INDEX webhook_deliveries_due_order_idx ON webhook_deliveries (next_attempt_at, id) WHERE status = 'pending';
DROP INDEX webhook_deliveries_due_idx;
