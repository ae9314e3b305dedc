DROP TABLE connection_secrets;
DROP TABLE livekit_webhook_events;
DROP TABLE participants;
DROP TABLE rooms;
