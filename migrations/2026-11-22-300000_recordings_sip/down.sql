DROP TABLE sip_configs;
DROP TABLE sip_trunks;
DROP TABLE recordings;
