// Module resolution hooks (see examples-register.mjs): a package imported by a file under the
// repository's examples/ folder is resolved as if it were imported from sdk/node, so `ai`,
// `zod` and `@faramesh/sdk` (a self-reference there) come from sdk/node.

const EXAMPLES = new URL("../../../../examples/", import.meta.url).href;
const SDK = new URL("../../package.json", import.meta.url).href;

/** A package name (`ai`, `ai/test`, `@faramesh/sdk/ai`), not a path, URL or `node:` builtin. */
function isPackage(specifier) {
  return !/^(\.{1,2}\/|\/|[a-zA-Z][a-zA-Z0-9+.-]*:)/.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  if (isPackage(specifier) && context.parentURL?.startsWith(EXAMPLES)) {
    return nextResolve(specifier, { ...context, parentURL: SDK });
  }
  return nextResolve(specifier, context);
}
