// Compiled (not run) by run-tests: the ES module declarations as a TypeScript user sees them.
import faramesh, {
  ExecutionGovernorClient,
  FarameshConflictError,
  FarameshError,
  configure,
  eventStream,
  govern,
  submitAction,
  type Action,
  type ActionStatus,
  type GateDecision,
  type StreamEvent,
} from "@faramesh/sdk";

configure({ baseUrl: "http://127.0.0.1:8000", token: "t", failMode: "closed", maxRetries: 2 });

export async function usage(): Promise<void> {
  const action: Action = await submitAction("agent", "http", "get", { url: "https://example.com" });
  const status: ActionStatus = action.status;
  const token: string | null = action.approval_token;
  const decision: GateDecision = await faramesh.gateDecide({ agentId: "a", tool: "http", operation: "get" });
  const client = new ExecutionGovernorClient({ baseUrl: "http://127.0.0.1:8000" });
  await client.reportResult(action.id, { success: true, output: { rows: 1 } });
  const add = govern((a: number, b: number) => a + b, { tool: "calc", operation: "add" });
  const sum: number = await add(1, 2);
  for await (const event of eventStream({ agentId: "agent" })) {
    const e: StreamEvent = event;
    void e.data.status;
    break;
  }
  try {
    await client.approveAction(action.id, { reason: "ok" });
  } catch (error) {
    if (error instanceof FarameshConflictError) void error.currentStatus;
    if (error instanceof FarameshError) void [error.status, error.detail];
  }
  void [status, token, decision, sum];
}
