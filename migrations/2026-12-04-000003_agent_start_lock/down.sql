DROP TRIGGER agents_start_lock ON agents;
DROP FUNCTION voxplane_agent_start_lock();
