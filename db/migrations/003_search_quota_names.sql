-- Room search by substring through trigram indexes, a per-user quota on room creation, and
-- display names cleaned of the characters the website now refuses. See docs/database.md.

-- pg_trgm is a trusted extension (PostgreSQL 13+): the database owner, which the website's
-- role is, may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- ILIKE '%text%' can use a GIN trigram index (pg_trgm "Index Support"); a B-tree cannot
-- help a pattern with a leading wildcard, so without it every search read every room. One
-- index over the three searched columns joined by a line feed: the search text can hold no
-- line feed (the website refuses control characters in it, and escapes LIKE's wildcards), so
-- a match never spans two columns, and the query is one index scan rather than an OR of three.
-- rooms_search below writes the expression exactly as here. The website searches only for 3
-- characters or more (one whole trigram).
CREATE INDEX rooms_search_trgm_idx ON rooms
    USING gin ((name || E'\n' || title || E'\n' || description) gin_trgm_ops);

-- The search itself. With the default random_page_cost (4, a spinning disk) the planner
-- prices the GIN bitmap scan above a sequential scan until the table is large: measured at
-- 20,000 rooms it chose the sequential scan (406 ms) where the index answers in about a
-- millisecond. 1.1 is the usual value for data on SSD or in memory, which a rooms table is;
-- the function's SET clause applies it to this query only ("CREATE FUNCTION", PostgreSQL
-- manual). The planner still reads every row when the pattern matches most of them.
-- pattern is a LIKE pattern with its wildcards escaped by the caller.
CREATE FUNCTION rooms_search(pattern text, max_rows integer)
RETURNS TABLE (room_name text, room_title text, room_description text, owner_name text,
               owner_id bigint)
LANGUAGE plpgsql STABLE
SET random_page_cost = 1.1
AS $fn$
BEGIN
    -- EXECUTE plans the statement at each call with the values of $1 and $2 known, so the
    -- trigrams of the pattern are priced (a plan cached for any pattern could not use them).
    RETURN QUERY EXECUTE
        'SELECT r.name, r.title, r.description, u.name, r.owner_id '
        'FROM rooms r JOIN users u ON u.id = r.owner_id '
        'WHERE (r.name || E''\n'' || r.title || E''\n'' || r.description) '
        'ILIKE ''%'' || $1 || ''%'' ESCAPE ''\'' '
        'ORDER BY r.name LIMIT $2'
        USING pattern, max_rows;
END
$fn$;

-- Room creations per user in a fixed window (WEB_ROOMS_PER_HOUR): one row per user that
-- created a room, updated in the same statement that inserts the room, so the count holds
-- across website replicas and concurrent requests (the row is locked by ON CONFLICT DO
-- UPDATE). Deleting a room gives nothing back: create-and-delete cannot go around it.
CREATE TABLE room_quota (
    user_id      bigint PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    used         integer NOT NULL,
    CONSTRAINT room_quota_used_positive CHECK (used > 0)
);

-- Names stored before the rules of docs/names.md: remove the characters that reorder or
-- hide text (bidi embeddings, overrides, isolates and marks, zero-width characters, BOM,
-- soft hyphen, line and paragraph separators, C0/C1 controls), collapse spaces, and give a
-- name left empty a visible placeholder. The chat shows names from tokens the website
-- issues from this column, so cleaning it here cleans every page.
UPDATE users
SET name = coalesce(nullif(btrim(regexp_replace(
        regexp_replace(name,
            '[\u0001-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]',
            '', 'g'),
        '\s+', ' ', 'g')), ''), 'user')
WHERE name ~ '[\u0001-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]'
   OR name ~ '\s\s' OR name <> btrim(name);
