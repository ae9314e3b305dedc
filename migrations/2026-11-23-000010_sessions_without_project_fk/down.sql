DROP TRIGGER projects_delete_sessions ON projects;
DROP FUNCTION voxplane_delete_project_sessions();
ALTER TABLE sessions ADD CONSTRAINT sessions_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES projects (id) ON DELETE CASCADE;
