// The parts of the pinned @modelcontextprotocol/sdk that ../clients/ts_client.mjs uses. Bare
// specifiers resolve from this folder's node_modules, which ts_client.mjs (in ../clients) cannot
// reach by itself; importing through this file keeps the package's own export map in charge.
export { Client } from "@modelcontextprotocol/sdk/client/index.js";
export { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
export { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
export {
  CallToolResultSchema,
  CreateMessageRequestSchema,
  LATEST_PROTOCOL_VERSION,
  McpError,
  SUPPORTED_PROTOCOL_VERSIONS,
} from "@modelcontextprotocol/sdk/types.js";
