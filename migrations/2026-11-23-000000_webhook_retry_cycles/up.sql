-- A manual redeliver or recover starts a fresh retry cycle: the retry
-- schedule is indexed by the tries of the current cycle (`cycle_attempts`,
-- reset by them), while `attempts` keeps counting every try of the delivery
-- (it numbers the attempt rows and is the token of a worker's claim).
ALTER TABLE webhook_deliveries ADD COLUMN cycle_attempts INTEGER NOT NULL DEFAULT 0;
UPDATE webhook_deliveries SET cycle_attempts = attempts;
