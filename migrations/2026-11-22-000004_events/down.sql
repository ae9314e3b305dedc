DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE webhook_endpoints;
DROP TRIGGER events_notify ON events;
DROP FUNCTION voxplane_notify_event();
DROP TABLE events;
