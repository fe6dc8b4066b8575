-- What the agent API keeps about an agent beside the engine's profile: the SHA-256 of
-- their token, their webhook, auto-accept (JSON).
CREATE TABLE agent_settings (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL
);
