DROP TABLE outbound_emails;
DROP TABLE invitations;
DROP TABLE project_members;
ALTER TABLE api_keys DROP COLUMN created_by;
DROP INDEX projects_owner_idx;
ALTER TABLE projects DROP COLUMN owner_account_id;
DROP TABLE auth_tokens;
DROP TABLE account_sessions;
DROP TABLE accounts;
