ALTER TABLE sessions DROP COLUMN room_sid;
