// Compiled (not run) by run-tests: the CommonJS declarations as a TypeScript user sees them.
import sdk = require("@faramesh/sdk");

export async function usage(): Promise<number> {
  const client = new sdk.ExecutionGovernorClient("http://127.0.0.1:8000", { agentId: "a" });
  const action: sdk.Action = await client.submitAction("http", "get", {});
  const done: sdk.Action = await sdk.waitForCompletion(action.id, { pollIntervalMs: 100 });
  const tool = sdk.govern({ tool: "shell", operation: "run" }, async (cmd: string) => cmd.length);
  const n: number = await tool("ls");
  const err: sdk.FarameshError = new sdk.FarameshForbiddenError("x", { status: 403 });
  void [done, err];
  return n;
}
