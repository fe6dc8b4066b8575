-- How far each IMAP mailbox was ingested: every message up to last_uid under this
-- uidvalidity was published (the bus confirmed it). A new uidvalidity starts over.
CREATE TABLE mailbox_checkpoints (
    mailbox TEXT PRIMARY KEY,
    uidvalidity BIGINT NOT NULL,
    last_uid BIGINT NOT NULL
);
