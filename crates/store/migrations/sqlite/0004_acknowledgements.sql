-- Automatic acknowledgements sent per mailbox, recipient and day (days since the Unix
-- epoch, UTC), so RFC 3834's "not more than so many a day" holds across restarts.
CREATE TABLE acknowledgements (
    mailbox TEXT NOT NULL,
    recipient TEXT NOT NULL,
    day BIGINT NOT NULL,
    sent BIGINT NOT NULL,
    PRIMARY KEY (mailbox, recipient, day)
);
