-- The token version: raised by one in every transaction that creates or revokes an API token,
-- and read by a replica before it trusts its cached tokens. A replica whose cache is as new as
-- this number knows of every revocation committed so far, whether or not the notification of
-- it has arrived yet.
CREATE TABLE token_version (
    id      SMALLINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO token_version (id, version) VALUES (1, 0);
