/**
 * The version of Blixard, defined in this one place. `package.json` carries the same value
 * for npm; a test keeps the two equal.
 *
 * @module
 */

/** The release version printed by `blixard --version` and exported as `blixard_build_info`. */
export const VERSION = "0.1.0";
