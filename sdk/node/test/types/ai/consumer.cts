// Compiled (not run) by run-tests: the CommonJS declarations of @faramesh/sdk/ai, with a tool
// object of the AI SDK's shape (the `ai` package itself is an ES module).
import faramesh = require("@faramesh/sdk/ai");

const echo = {
  description: "Echo",
  inputSchema: {},
  execute: async (input: { text: string }, options: { toolCallId: string }) => `${options.toolCallId}: ${input.text}`,
};

export function usage(): typeof echo {
  const governed = faramesh.governTool(echo, { toolName: "echo", params: (input) => ({ text: input.text }) });
  const set: { echo: typeof echo } = faramesh.governTools({ echo }, { agentId: "a" });
  const error: faramesh.GovernedToolDeniedError = new faramesh.GovernedToolDeniedError("x", { reason: "r", toolName: "echo" });
  void [set, error.reason, faramesh.DENIAL_PREFIX];
  return governed;
}
