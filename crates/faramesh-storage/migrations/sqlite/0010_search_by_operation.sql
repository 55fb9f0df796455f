-- Search finds actions by a piece of their agent, tool or operation name. It first reads the
-- distinct names of each column from an index led by that column, then lists the actions of
-- each matching name newest first, merging one range per name and status (see the storage
-- crate's `listing` module). Agent and tool already have such indexes; this is operation's.
CREATE INDEX actions_operation_status ON actions (operation, status);
