-- Listing filters on any combination of agent, tool and status, newest first. With an index per
-- column only, a combination walked one column's whole range in its index, reading every row
-- to check the others: `agent_id` with a `tool` it never used read all of that agent's actions
-- (440 ms on a ledger of 10 million events). An index per combination finds the matching rows
-- already in rowid order, so a page costs the same whatever the filters.
CREATE INDEX actions_agent_tool ON actions (agent_id, tool);
CREATE INDEX actions_agent_status ON actions (agent_id, status);
CREATE INDEX actions_tool_status ON actions (tool, status);
CREATE INDEX actions_agent_tool_status ON actions (agent_id, tool, status);
