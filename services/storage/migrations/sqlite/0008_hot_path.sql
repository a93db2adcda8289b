-- The national breakdown rows are rewritten at every apply that touches their key, and each
-- rewrite moved `changed_at_position`, which this index held (an index update per row
-- rewritten). The leaderboard's read of the rows changed since its last read scans the event's
-- rows through the primary key's `event_id` prefix instead (bounded by that event's keys).
DROP INDEX IF EXISTS segment_totals_changed;
