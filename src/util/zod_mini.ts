/**
 * `zod/mini`, set up as the classic `zod` API sets itself up on its first schema.
 *
 * Every schema under `src/` uses zod's functional API (`zod_mini_test.ts` keeps it so): the
 * classic API's first schema costs a process about 15 ms of CPU that mini's does not, and
 * each classic schema costs more to build and to run (docs/benchmarks.md, "zod/mini on the
 * start path" and "zod/mini everywhere in src/"). Both share zod's core and give the same
 * issues, so tests may still build their inputs with the classic API.
 *
 * @module
 */

import { config, memoizer } from "zod/mini";
import en from "zod/v4/locales/en.js";

export * as z from "./zod_members.ts";

// Without a locale every issue reads "Invalid input", and users see these messages. Without
// the memoizer a schema built before the first classic one would parse without zod's
// reference-cycle handling. Classic zod installs both unless set, so this changes nothing
// for the schemas it builds. `en` comes from its own module, not from `z.locales`, which
// would bring all of zod's locales into the bundle (zod_members.ts says why).
config({ ...en(), memoizer: memoizer() });
