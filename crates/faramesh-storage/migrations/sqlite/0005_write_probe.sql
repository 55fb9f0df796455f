-- After a write was refused (a full disk), readiness is proven by writing as much as the
-- refused write needed into this table, then deleting it: only a write of that size proves the
-- next one will fit, since a small one can fit into space the files already hold.
CREATE TABLE write_probe (
    id     INTEGER PRIMARY KEY,
    filler BLOB NOT NULL
);
