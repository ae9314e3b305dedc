DROP TABLE sip_calls;
