// `node --import ./test/helpers/examples-register.mjs examples/<name>.mjs` runs an example of the
// repository's examples/ folder in place, with the packages it imports (ai, zod, @faramesh/sdk)
// taken from this SDK's node_modules and build instead of an install in examples/.
import { register } from "node:module";

register("./examples-hooks.mjs", import.meta.url);
