-- Activities (a time, a place, a capacity), membership, private rooms and invites.
-- See docs/database.md. Written to be re-runnable: IF NOT EXISTS / OR REPLACE throughout.

ALTER TABLE rooms
    ADD COLUMN IF NOT EXISTS starts_at timestamptz,
    ADD COLUMN IF NOT EXISTS ends_at timestamptz,
    ADD COLUMN IF NOT EXISTS location text,
    ADD COLUMN IF NOT EXISTS capacity integer,
    ADD COLUMN IF NOT EXISTS visibility text NOT NULL DEFAULT 'public';

ALTER TABLE rooms DROP CONSTRAINT IF EXISTS rooms_ends_after_start;
ALTER TABLE rooms ADD CONSTRAINT rooms_ends_after_start
    CHECK (ends_at IS NULL OR (starts_at IS NOT NULL AND ends_at > starts_at));
ALTER TABLE rooms DROP CONSTRAINT IF EXISTS rooms_location_len;
ALTER TABLE rooms ADD CONSTRAINT rooms_location_len CHECK (length(location) BETWEEN 1 AND 200);
ALTER TABLE rooms DROP CONSTRAINT IF EXISTS rooms_capacity_range;
ALTER TABLE rooms ADD CONSTRAINT rooms_capacity_range CHECK (capacity BETWEEN 1 AND 10000);
ALTER TABLE rooms DROP CONSTRAINT IF EXISTS rooms_visibility_values;
ALTER TABLE rooms ADD CONSTRAINT rooms_visibility_values
    CHECK (visibility IN ('public', 'private'));

-- "Upcoming activities": rooms with a start time, soonest first.
CREATE INDEX IF NOT EXISTS rooms_starts_at_idx ON rooms (starts_at) WHERE starts_at IS NOT NULL;

-- Who belongs to a room. last_read_seq is the highest chat seq the member has seen (unread =
-- the room's latest seq in Redis minus this); it only grows (the website writes GREATEST).
CREATE TABLE IF NOT EXISTS room_members (
    room_id       bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at     timestamptz NOT NULL DEFAULT now(),
    last_read_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (room_id, user_id),
    CONSTRAINT room_members_seq_range CHECK (last_read_seq BETWEEN 0 AND 9007199254740991)
);
-- "My rooms": the rooms of one user (the primary key leads with room_id).
CREATE INDEX IF NOT EXISTS room_members_user_id_idx ON room_members (user_id);

-- Invite links of private rooms: only the SHA-256 of the code is stored, so the table read
-- by someone else does not let them in. Single-use: used_at/used_by are set by the join.
CREATE TABLE IF NOT EXISTS room_invites (
    code_hash  bytea PRIMARY KEY,
    room_id    bigint NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    created_by bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    used_at    timestamptz,
    used_by    bigint REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT room_invites_hash_sha256 CHECK (octet_length(code_hash) = 32)
);
CREATE INDEX IF NOT EXISTS room_invites_room_id_idx ON room_invites (room_id);

-- The owner is a member of their room.
INSERT INTO room_members (room_id, user_id)
SELECT id, owner_id FROM rooms
ON CONFLICT DO NOTHING;

-- Joins user uid to room rid without ever exceeding its capacity. Returns 'joined',
-- 'member' (already one), 'full' or 'gone' (no such room). The room row is locked first
-- (FOR UPDATE): concurrent joins of one room run one after the other. A PL/pgSQL function
-- that is VOLATILE takes a new snapshot for each statement (PostgreSQL manual, "Visibility
-- of Data Changes"), so the count below, taken after the lock was granted, sees every join
-- committed before it; a single SQL statement would count with the snapshot it started
-- with, from before the lock wait, and could overbook.
CREATE OR REPLACE FUNCTION room_join(rid bigint, uid bigint)
RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    cap integer;
    n   bigint;
BEGIN
    SELECT capacity INTO cap FROM rooms WHERE id = rid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'gone';
    END IF;
    IF EXISTS (SELECT 1 FROM room_members WHERE room_id = rid AND user_id = uid) THEN
        RETURN 'member';
    END IF;
    IF cap IS NOT NULL THEN
        SELECT count(*) INTO n FROM room_members WHERE room_id = rid;
        IF n >= cap THEN
            RETURN 'full';
        END IF;
    END IF;
    INSERT INTO room_members (room_id, user_id) VALUES (rid, uid);
    RETURN 'joined';
END
$fn$;

-- Parses an ISO 8601 date-time the website has checked the shape of: with an offset (or Z)
-- as given, without one in the IANA zone tz (which must be in pg_timezone_names). NULL when
-- PostgreSQL cannot read it (31 February, hour 25, unknown zone), so the website answers 400.
CREATE OR REPLACE FUNCTION parley_parse_time(t text, tz text)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $fn$
BEGIN
    IF t ~ '([Zz]|[+-][0-9]{2}:[0-9]{2})$' THEN
        RETURN t::timestamptz;
    END IF;
    IF tz IS NULL OR NOT EXISTS (SELECT 1 FROM pg_timezone_names WHERE name = tz) THEN
        RETURN NULL;
    END IF;
    RETURN t::timestamp AT TIME ZONE tz;
EXCEPTION WHEN data_exception THEN
    RETURN NULL;
END
$fn$;

-- The search of migration 003, now showing a private room only to its members and admins.
DROP FUNCTION IF EXISTS rooms_search(text, integer);
DROP FUNCTION IF EXISTS rooms_search(text, integer, bigint, boolean);
CREATE FUNCTION rooms_search(pattern text, max_rows integer, uid bigint, admin boolean)
RETURNS TABLE (room_name text, room_title text, room_description text, owner_name text,
               owner_id bigint, starts_at text, ends_at text, location text, capacity integer,
               members bigint, visibility text, joined boolean, last_read_seq bigint,
               room_id bigint)
LANGUAGE plpgsql STABLE
SET random_page_cost = 1.1
AS $fn$
BEGIN
    RETURN QUERY EXECUTE
        'SELECT r.name, r.title, r.description, u.name, r.owner_id, '
        'to_char(r.starts_at AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS"Z"''), '
        'to_char(r.ends_at AT TIME ZONE ''UTC'', ''YYYY-MM-DD"T"HH24:MI:SS"Z"''), '
        'r.location, r.capacity, '
        '(SELECT count(*) FROM room_members c WHERE c.room_id = r.id), r.visibility, '
        'm.user_id IS NOT NULL, m.last_read_seq, r.id '
        'FROM rooms r JOIN users u ON u.id = r.owner_id '
        'LEFT JOIN room_members m ON m.room_id = r.id AND m.user_id = $3 '
        'WHERE (r.name || E''\n'' || r.title || E''\n'' || r.description) '
        'ILIKE ''%'' || $1 || ''%'' ESCAPE ''\'' '
        'AND (r.visibility = ''public'' OR m.user_id IS NOT NULL OR $4) '
        'ORDER BY r.name LIMIT $2'
        USING pattern, max_rows, uid, admin;
END
$fn$;

-- Uses invite code_hash h for user uid: the invite row is locked (two people with one link:
-- the second waits, then finds it used), then the user joins through room_join (so the
-- capacity holds for invited people too), and the invite is spent only when that made them
-- a member ('joined'). Returns the status ('invalid' for an unknown, used, revoked or expired
-- code; else room_join's) and the room's name.
CREATE OR REPLACE FUNCTION invite_use(h bytea, uid bigint)
RETURNS TABLE (out_status text, out_room text) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    rid bigint;
    st  text;
BEGIN
    SELECT i.room_id INTO rid FROM room_invites i
    WHERE i.code_hash = h AND i.used_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > now()
    FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'invalid'::text, NULL::text;
        RETURN;
    END IF;
    st := room_join(rid, uid);
    IF st = 'joined' THEN
        UPDATE room_invites SET used_at = now(), used_by = uid WHERE code_hash = h;
    END IF;
    RETURN QUERY SELECT st, (SELECT r.name FROM rooms r WHERE r.id = rid);
END
$fn$;

-- The owner's edit of room rid: the room row is locked as room_join locks it, so a capacity
-- is never set below the members counted after every join before it. Returns 'ok', 'gone'
-- or 'too_small' (more members than the new capacity: nothing changed).
CREATE OR REPLACE FUNCTION room_edit(rid bigint, new_title text, new_description text,
                                     new_starts timestamptz, new_ends timestamptz,
                                     new_location text, new_capacity integer,
                                     new_visibility text)
RETURNS text LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM 1 FROM rooms WHERE id = rid FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 'gone';
    END IF;
    IF new_capacity IS NOT NULL
       AND (SELECT count(*) FROM room_members WHERE room_id = rid) > new_capacity THEN
        RETURN 'too_small';
    END IF;
    UPDATE rooms SET title = new_title, description = new_description, starts_at = new_starts,
        ends_at = new_ends, location = new_location, capacity = new_capacity,
        visibility = new_visibility
    WHERE id = rid;
    RETURN 'ok';
END
$fn$;
