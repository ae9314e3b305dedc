-- Starts read the agents they dispatch under a shared transaction advisory
-- lock per project (src/calls/dispatch.rs, `candidates`) instead of locking
-- the agent rows FOR KEY SHARE: a row lock writes the row (and, held by two
-- batches at once, makes a multixact), once per project in every batch of
-- starts, where an advisory lock lives in memory only (issue #20). Deleting
-- an agent, by any path, takes the lock exclusively first: it waits for the
-- starts of the project in flight, and starts after it see the agent gone.
-- The two-key form: its key space is apart from the one-key advisory locks.
CREATE FUNCTION voxplane_agent_start_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('voxplane.agents'), (OLD.project_id % 2147483647)::int4);
    RETURN OLD;
END $$;
CREATE TRIGGER agents_start_lock BEFORE DELETE ON agents
    FOR EACH ROW EXECUTE FUNCTION voxplane_agent_start_lock();
