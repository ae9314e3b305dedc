ALTER TABLE webhook_deliveries DROP COLUMN cycle_attempts;
