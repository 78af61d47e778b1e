/**
 * `SimRandom`: the simulator's only source of randomness, seeded so that a run replays
 * exactly from its seed (xoroshiro128+ from `pure-rand`).
 *
 * @module
 */

import { xoroshiro128plus } from "pure-rand/generator/xoroshiro128plus";
import { uniformInt } from "pure-rand/distribution/uniformInt";
import { uniformFloat64 } from "pure-rand/distribution/uniformFloat64";
import type { RandomGenerator } from "pure-rand/types/RandomGenerator";

/** A seeded pseudo-random stream with the draws the simulator needs. */
export class SimRandom {
  readonly #generator: RandomGenerator;

  /** `seed` must be a 32-bit integer (any integer in `[-2^31, 2^32)`). */
  constructor(seed: number) {
    if (!Number.isInteger(seed) || seed < -(2 ** 31) || seed >= 2 ** 32) {
      throw new RangeError(`SimRandom: seed ${seed} is not a 32-bit integer`);
    }
    this.#generator = xoroshiro128plus(seed | 0);
  }

  /** A uniform integer in `[min, max]`, both included. */
  integer(min: number, max: number): number {
    if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
      throw new RangeError(`SimRandom.integer(${min}, ${max}): not a range of integers`);
    }
    return uniformInt(this.#generator, min, max);
  }

  /** A uniform number in `[0, 1)`. */
  float(): number {
    return uniformFloat64(this.#generator);
  }

  /** True with probability `probability` (in `[0, 1]`). */
  chance(probability: number): boolean {
    if (!(probability >= 0 && probability <= 1)) {
      throw new RangeError(`SimRandom.chance(${probability}): probability outside [0, 1]`);
    }
    return probability > 0 && this.float() < probability;
  }

  /** One element of `items`, which must not be empty. */
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("SimRandom.pick: no items to pick from");
    return items[this.integer(0, items.length - 1)] as T;
  }
}
