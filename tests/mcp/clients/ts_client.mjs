// Scenario driver on the official MCP TypeScript SDK (@modelcontextprotocol/sdk 1.x); same
// interface and output as py_client.py.
//
//   node ts_client.mjs [options] --stdio -- COMMAND [ARGS...]
//   node ts_client.mjs [options] --url URL [--header 'Name: value' ...]
//
// Options:
//   --scenario FILE_OR_JSON   a JSON array of steps (inline, or the name of a file holding it)
//   --client-name NAME        clientInfo.name (default ts-test-client)
//   --protocol-version V      auto | legacy | a version the SDK supports (see below)
//   --connect-timeout S       seconds allowed for the handshake (default 30), then exit status 1
//
// Each step prints one JSON line on stdout: {"step": i, "op": ..., "ok": true, "result": ...} or
// {"step": i, "op": ..., "ok": false, "error": {"code": <JSON-RPC code or null>, "message": ...}}.
// Ops: initialize_info, list_tools, call_tool, list_resources, list_resource_templates,
// read_resource, list_prompts, get_prompt, ping, sleep, wait_for_file (until the test creates
// the file at "path", at most "timeout" seconds, default 60), parallel (sub-steps numbered "i.j").
// Sampling requests are answered with "model says: <last user message text>".
// Exit status: 0 when the scenario ran (even with failed steps), 2 on bad usage, 1 when the
// connection could not be made (the reason goes to stderr).
//
// Protocol versions (sdk 1.32.2): SUPPORTED_PROTOCOL_VERSIONS is 2025-11-25, 2025-06-18,
// 2025-03-26, 2024-11-05 and 2024-10-07; the client always offers LATEST_PROTOCOL_VERSION
// (2025-11-25) in `initialize` and accepts any supported version the server answers with. It
// knows neither `server/discover` nor 2026-07-28, so `auto` and `legacy` both mean that default.
// Another supported version is offered by rewriting the outgoing initialize request (the SDK has
// no option for it). The SDK does not expose the negotiated version either: the driver keeps the
// initialize result it sees go by.
//
// A request without a `timeout` gets the SDK's default limit of 60 s (the Python SDK sets none).
//
// The spawned command inherits this process's whole environment (the SDK alone would pass only a
// few variables such as PATH and HOME), and its stderr goes to ours.

import { existsSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import {
  CallToolResultSchema,
  Client,
  CreateMessageRequestSchema,
  LATEST_PROTOCOL_VERSION,
  McpError,
  StdioClientTransport,
  StreamableHTTPClientTransport,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "../node/sdk.mjs";

const OPS = new Set([
  "initialize_info", "list_tools", "call_tool", "list_resources", "list_resource_templates",
  "read_resource", "list_prompts", "get_prompt", "ping", "sleep", "wait_for_file", "parallel",
]);

function usage(message) {
  process.stderr.write(`ts_client.mjs: ${message}\n`);
  process.exit(2);
}

function parseCommandLine(argv) {
  const split = argv.indexOf("--");
  const command = split === -1 ? [] : argv.slice(split + 1);
  let values;
  try {
    ({ values } = parseArgs({
      args: split === -1 ? argv : argv.slice(0, split),
      options: {
        stdio: { type: "boolean" },
        url: { type: "string" },
        header: { type: "string", multiple: true, default: [] },
        scenario: { type: "string" },
        "client-name": { type: "string", default: "ts-test-client" },
        "protocol-version": { type: "string", default: "auto" },
        "connect-timeout": { type: "string", default: "30" },
      },
    }));
  } catch (error) {
    usage(error.message);
  }
  if (Boolean(values.stdio) === Boolean(values.url)) usage("give exactly one of --stdio and --url");
  if (values.stdio && command.length === 0) usage("--stdio needs a command after --");
  if (values.url && command.length > 0) usage("a command after -- goes with --stdio only");
  if (values.header.length > 0 && !values.url) usage("--header goes with --url only");
  if (values.scenario === undefined) usage("--scenario is required");
  const headers = {};
  for (const header of values.header) {
    const colon = header.indexOf(":");
    if (colon <= 0 || !header.slice(0, colon).trim()) usage(`--header '${header}' is not 'Name: value'`);
    headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
  }
  const version = values["protocol-version"];
  if (!["auto", "legacy", ...SUPPORTED_PROTOCOL_VERSIONS].includes(version)) {
    usage(`--protocol-version must be one of auto, legacy, ${SUPPORTED_PROTOCOL_VERSIONS.join(", ")}`);
  }
  const connectTimeout = Number(values["connect-timeout"]);
  if (!(connectTimeout > 0)) usage("--connect-timeout must be a number of seconds");
  return {
    connectTimeout,
    command,
    url: values.url,
    headers,
    steps: loadScenario(values.scenario),
    clientName: values["client-name"],
    offer: ["auto", "legacy"].includes(version) ? LATEST_PROTOCOL_VERSION : version,
  };
}

function loadScenario(text) {
  let steps;
  try {
    steps = JSON.parse(text.trimStart().startsWith("[") ? text : readFileSync(text, "utf8"));
  } catch (error) {
    usage(`--scenario: ${error.message}`);
  }
  checkSteps(steps);
  return steps;
}

function checkSteps(steps) {
  if (!Array.isArray(steps)) usage("--scenario: not a JSON array");
  for (const step of steps) {
    if (typeof step !== "object" || step === null || !OPS.has(step.op)) {
      usage(`--scenario: bad step ${JSON.stringify(step)}`);
    }
    if (step.op === "parallel") checkSteps(step.steps);
  }
}

function lastUserText(params) {
  for (const message of [...params.messages].reverse()) {
    if (message.role === "user") {
      const blocks = Array.isArray(message.content) ? message.content : [message.content];
      return blocks.filter((block) => block.type === "text").map((block) => block.text).join("");
    }
  }
  return "";
}

function errorOf(error) {
  if (error instanceof McpError) {
    // McpError prefixes its message with "MCP error <code>: "; keep the peer's message alone.
    return { code: error.code, message: error.message.replace(/^MCP error -?\d+: /, "") };
  }
  return { code: null, message: `${error?.name ?? "Error"}: ${error?.message ?? String(error)}` };
}

async function allPages(fetch, key) {
  const items = [];
  let cursor;
  do {
    const page = await fetch(cursor === undefined ? {} : { cursor });
    items.push(...page[key]);
    cursor = page.nextCursor;
  } while (cursor);
  return items;
}

class Cancelled extends Error {}

class Runner {
  constructor(client, initializeResult) {
    this.client = client;
    this.initializeResult = initializeResult;
  }

  async run(step, label) {
    if (step.op === "parallel") {
      await Promise.all(step.steps.map((sub, j) => this.run(sub, `${label}.${j}`)));
      return;
    }
    const extra = {}; // keys an op adds after result/error ("progress" for call_tool)
    let line;
    try {
      line = { step: label, op: step.op, ok: true, result: await this[step.op](step, extra) };
    } catch (error) {
      if (error instanceof Cancelled) {
        line = { step: label, op: step.op, ok: false, error: { code: null, message: error.message }, cancelled: true };
      } else {
        line = { step: label, op: step.op, ok: false, error: errorOf(error) };
      }
    }
    process.stdout.write(`${JSON.stringify({ ...line, ...extra })}\n`);
  }

  async initialize_info() {
    const { serverInfo, protocolVersion, capabilities, instructions } = this.initializeResult;
    return { serverInfo, protocolVersion, capabilities, instructions: instructions ?? null };
  }

  async list_tools() {
    const tools = await allPages((params) => this.client.listTools(params), "tools");
    return { names: tools.map((tool) => tool.name), tools };
  }

  async call_tool(step, extra) {
    const progress = [];
    // Filled in as notifications arrive, so a failed or cancelled call still reports them.
    extra.progress = progress;
    const options = {};
    if (step.timeout !== undefined) options.timeout = step.timeout * 1000;
    if (step.progress) {
      // Giving onprogress makes the SDK add a progressToken to the request.
      options.onprogress = ({ progress: value, total, message }) =>
        progress.push({ progress: value, total: total ?? null, message: message ?? null });
    }
    let timer;
    const aborter = new AbortController();
    if (step.cancel_after !== undefined) {
      // Aborting makes the SDK send notifications/cancelled for the request.
      options.signal = aborter.signal;
      timer = setTimeout(() => aborter.abort("cancelled by the client"), step.cancel_after * 1000);
    }
    try {
      const params = { name: step.name, arguments: step.arguments ?? {} };
      const result = await this.client.callTool(params, CallToolResultSchema, options);
      return { isError: false, ...result };
    } catch (error) {
      if (aborter.signal.aborted) throw new Cancelled(`cancelled by the client after ${step.cancel_after} s`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async list_resources() {
    return { resources: await allPages((params) => this.client.listResources(params), "resources") };
  }

  async list_resource_templates() {
    const templates = await allPages((params) => this.client.listResourceTemplates(params), "resourceTemplates");
    return { resourceTemplates: templates };
  }

  async read_resource(step) {
    return await this.client.readResource({ uri: step.uri });
  }

  async list_prompts() {
    return { prompts: await allPages((params) => this.client.listPrompts(params), "prompts") };
  }

  async get_prompt(step) {
    return await this.client.getPrompt({ name: step.name, arguments: step.arguments ?? {} });
  }

  async ping() {
    return await this.client.ping();
  }

  async sleep(step) {
    await new Promise((resolve) => setTimeout(resolve, step.seconds * 1000));
    return {};
  }

  // The test's signal that it has done its part (approved an action, say).
  async wait_for_file(step) {
    const deadline = Date.now() + (step.timeout ?? 60) * 1000;
    while (!existsSync(step.path)) {
      if (Date.now() > deadline) throw new Error(`no file ${step.path} within ${step.timeout ?? 60} s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return {};
  }
}

async function main() {
  const args = parseCommandLine(process.argv.slice(2));
  const transport = args.url
    ? new StreamableHTTPClientTransport(new URL(args.url), { requestInit: { headers: args.headers } })
    : new StdioClientTransport({
        command: args.command[0],
        args: args.command.slice(1),
        env: { ...process.env },
        stderr: "inherit",
      });
  const client = new Client({ name: args.clientName, version: "1.0.0" }, { capabilities: { sampling: {} } });
  // The SDK reports protocol trouble it does not throw (e.g. a line that is not JSON) here.
  let closing = false; // closing aborts the HTTP transport's streams, which is no news
  client.onerror = (error) => closing || process.stderr.write(`ts_client.mjs: sdk: ${error?.message ?? error}\n`);
  client.setRequestHandler(CreateMessageRequestSchema, async (request) => ({
    role: "assistant",
    content: { type: "text", text: `model says: ${lastUserText(request.params)}` },
    model: "test-model",
    stopReason: "endTurn",
  }));

  // connect() sends `initialize` through request(): offer the chosen version and keep the result.
  let initializeResult;
  const request = client.request.bind(client);
  client.request = async (message, schema, options) => {
    if (message.method !== "initialize") return request(message, schema, options);
    message = { ...message, params: { ...message.params, protocolVersion: args.offer } };
    initializeResult = await request(message, schema, options);
    return initializeResult;
  };

  try {
    await client.connect(transport, { timeout: args.connectTimeout * 1000 });
  } catch (error) {
    process.stderr.write(`ts_client.mjs: connection failed: ${errorOf(error).message}\n`);
    await client.close().catch(() => {});
    return 1;
  }
  const runner = new Runner(client, initializeResult);
  for (const [i, step] of args.steps.entries()) await runner.run(step, i);
  closing = true;
  await client.close().catch((error) => process.stderr.write(`ts_client.mjs: while closing: ${error}\n`));
  return 0;
}

process.exit(await main());
