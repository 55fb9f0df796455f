-- Listing filters on any combination of agent, tool and status, newest first. With one index
-- per column, a combination walked one column's whole range, reading every row to check the
-- others: an agent with a tool it never used read all of that agent's actions (440 ms on a
-- ledger of 10 million events).
--
-- Every index now ends in `status`, so each combination has an index on exactly its columns,
-- where the matching rows are already in rowid order; a combination without `status` merges
-- the eight ranges of its index, one per status, still in order. Adding `status` to the agent
-- and tool indexes instead of adding an index per combination keeps an insert at one more
-- index than before; a status change now also moves the action in three small indexes.
DROP INDEX actions_agent;
DROP INDEX actions_tool;
CREATE INDEX actions_agent_status ON actions (agent_id, status);
CREATE INDEX actions_tool_status ON actions (tool, status);
CREATE INDEX actions_agent_tool_status ON actions (agent_id, tool, status);
