-- Parley's first schema: accounts, server-side sessions, rooms. See docs/database.md.
CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         text NOT NULL,
    name          text NOT NULL,
    password_hash text NOT NULL,
    is_admin      boolean NOT NULL DEFAULT false,
    banned_at     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_email_lower CHECK (email = lower(email)),
    CONSTRAINT users_email_len CHECK (length(email) BETWEEN 3 AND 254),
    CONSTRAINT users_name_len CHECK (length(name) BETWEEN 1 AND 64),
    CONSTRAINT users_hash_argon2id CHECK (password_hash LIKE '$argon2id$%')
);

CREATE TABLE sessions (
    id         bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token text NOT NULL,
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sessions_id_sha256 CHECK (octet_length(id) = 32),
    CONSTRAINT sessions_csrf_len CHECK (length(csrf_token) = 64)
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE rooms (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    title       text NOT NULL,
    description text NOT NULL DEFAULT '',
    owner_id    bigint NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT rooms_name_key UNIQUE (name),
    CONSTRAINT rooms_name_format CHECK (name ~ '^[a-z0-9][a-z0-9-]{2,31}$'),
    CONSTRAINT rooms_title_len CHECK (length(title) BETWEEN 1 AND 100),
    CONSTRAINT rooms_description_len CHECK (length(description) <= 1000)
);
CREATE INDEX rooms_owner_id_idx ON rooms (owner_id);
