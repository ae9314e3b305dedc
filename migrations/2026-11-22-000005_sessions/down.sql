DROP TABLE api_usage_daily;
DROP TABLE usage_events;
DROP TABLE transcripts;
DROP TABLE sessions;
