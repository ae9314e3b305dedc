-- The LiveKit room (its sid, RM_…) a session runs in, when known: a room
-- name is reused by later rooms, and a late `room_finished` of an earlier
-- one must not end the session of the room now open under that name.
ALTER TABLE sessions ADD COLUMN room_sid TEXT;
