/**
 * `zod/mini`, set up as the classic `zod` API sets itself up on its first schema.
 *
 * The schemas a node builds while it starts (its founding commands, member infos, invites)
 * use zod's functional API: the classic API's first schema costs a process about 15 ms of
 * CPU that mini's does not (docs/benchmarks.md, "zod/mini on the start path"). Both share
 * zod's core, so their schemas nest in each other and give the same issues.
 *
 * @module
 */

import { z } from "zod/mini";

// Without a locale every issue reads "Invalid input", and users see these messages. Without
// the memoizer a schema built before the first classic one would parse without zod's
// reference-cycle handling. Classic zod installs both unless set, so this changes nothing
// for the schemas it builds.
z.config({ ...z.locales.en(), memoizer: z.memoizer() });

export { z };
