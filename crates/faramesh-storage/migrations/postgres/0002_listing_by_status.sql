-- Listing filters on any combination of agent, tool and status, newest first (see the
-- storage crate's `listing` module). With one index per column, a combination walked one
-- column's whole range and read every row to check the others. Every listing index now ends in
-- `status`, then `pos`, so each combination has an index on exactly its columns, its rows in
-- `pos` order; a combination without a status merges that index's eight status ranges.
DROP INDEX actions_agent;
DROP INDEX actions_tool;
CREATE INDEX actions_agent_status ON actions (agent_id, status, pos);
CREATE INDEX actions_tool_status ON actions (tool, status, pos);
CREATE INDEX actions_agent_tool_status ON actions (agent_id, tool, status, pos);
