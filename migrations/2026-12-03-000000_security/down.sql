DROP TABLE connection_token_uses;
DROP INDEX sip_trunks_project_idx;
DROP INDEX sip_trunks_phone_number_key;
ALTER TABLE sip_trunks ADD CONSTRAINT sip_trunks_project_id_phone_number_key UNIQUE (project_id, phone_number);
ALTER TABLE auth_tokens DROP COLUMN name;
ALTER TABLE auth_tokens DROP COLUMN password_hash;
