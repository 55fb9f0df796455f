// Compiled (not run) by run-tests: @faramesh/sdk/ai with the real `ai` package's types, as an
// ES module user sees them. Governed tools must stay the tools the AI SDK expects.
import { generateText, stepCountIs, tool, type LanguageModel } from "ai";
import { z } from "zod";
import { ExecutionGovernorClient } from "@faramesh/sdk";
import {
  DENIAL_PREFIX,
  GovernedToolDeniedError,
  governTool,
  governTools,
  type GovernToolOptions,
} from "@faramesh/sdk/ai";

const weather = tool({
  description: "The weather in a city",
  inputSchema: z.object({ city: z.string() }),
  execute: async ({ city }) => ({ city, celsius: 21 }),
});

export async function usage(model: LanguageModel): Promise<void> {
  // The input type of params and context comes from the tool's schema.
  const governed = governTool(weather, {
    toolName: "weather",
    operation: "get",
    agentId: "agent",
    params: (input) => {
      // @ts-expect-error the input is { city: string } (not any): it has no other field
      void input.country;
      return { city: input.city };
    },
    context: (input, options) => ({ city: input.city, call: options.toolCallId ?? null }),
    onPending: (action) => console.log(action.id),
    onDenied: (error: GovernedToolDeniedError) => `${DENIAL_PREFIX}: ${error.reason}`,
  });
  const tools = governTools(
    { weather, shell: tool({ inputSchema: z.object({ cmd: z.string() }), execute: async ({ cmd }) => cmd.length }) },
    {
      client: new ExecutionGovernorClient({ baseUrl: "http://127.0.0.1:8000" }),
      approvalTimeoutMs: 60_000,
      overrides: { weather: { operation: "get", params: (input) => ({ city: input.city }) } },
    },
  );
  const result = await generateText({ model, tools: { ...tools, forecast: governed }, stopWhen: stepCountIs(5), prompt: "?" });
  for (const r of result.toolResults) {
    if (r.toolName === "weather" && !r.dynamic) {
      const celsius: number = r.output.celsius; // the output type survives governing
      void celsius;
    }
  }
  const options: GovernToolOptions<{ city: string }> = { toolName: "weather" };
  void options;
}
