-- Every user gets a stable public id: chat frames name people by it (and the display name),
-- never by email, which is personal data (docs/protocol.md "Privacy of members"). A random
-- UUID (gen_random_uuid, built into PostgreSQL 13+) reveals nothing about the account and
-- never changes; existing rows get one when this migration runs.
ALTER TABLE users ADD COLUMN public_id uuid NOT NULL DEFAULT gen_random_uuid();
ALTER TABLE users ADD CONSTRAINT users_public_id_key UNIQUE (public_id);
