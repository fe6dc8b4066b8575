-- Switchboard's state. Open contacts carry the engine's snapshot of them (JSON) so the
-- router can restore exactly; ended contacts keep their terminal state and reason.
CREATE TABLE names (
    kind TEXT NOT NULL,          -- 'skill', 'team', 'agent'
    name TEXT NOT NULL,
    id BIGINT NOT NULL,
    PRIMARY KEY (kind, name),
    UNIQUE (kind, id)
);

CREATE TABLE contacts (
    seq BIGINT PRIMARY KEY,     -- the engine's contact id
    id TEXT NOT NULL UNIQUE,     -- the public id
    conversation TEXT NOT NULL,
    customer TEXT NOT NULL,
    channel TEXT NOT NULL,
    queue TEXT NOT NULL,
    summary TEXT NOT NULL,
    attributes TEXT NOT NULL,    -- JSON object
    state TEXT NOT NULL,         -- waiting, offered, assigned, wrap_up, closed, abandoned
    agent BIGINT,               -- holder, or the last owner once closed
    arrived_at BIGINT NOT NULL, -- ms since the epoch
    snapshot TEXT,               -- engine snapshot while open (JSON)
    ended_at BIGINT,
    end_reason TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX contacts_open ON contacts (state) WHERE snapshot IS NOT NULL;

CREATE TABLE messages (
    id TEXT PRIMARY KEY,         -- the envelope's id: dedup key
    contact_seq BIGINT,         -- the contact it created or joined
    outcome TEXT NOT NULL,       -- contact, follow_up, dead_lettered
    reason TEXT,
    received_at BIGINT NOT NULL,
    processed_at BIGINT NOT NULL
);

CREATE TABLE agents (
    id BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    snapshot TEXT NOT NULL,      -- engine snapshot (JSON)
    updated_at BIGINT NOT NULL
);

CREATE TABLE owners (
    customer TEXT PRIMARY KEY,
    agent BIGINT NOT NULL,
    closed_at BIGINT NOT NULL
);

CREATE TABLE audit (
    seq BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    contact_seq BIGINT,
    agent BIGINT,
    kind TEXT NOT NULL,
    detail TEXT NOT NULL         -- JSON
);
CREATE INDEX audit_contact ON audit (contact_seq);

CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
