/**
 * A cluster of real node processes that the harness breaks and repairs: the members by id
 * (the process now running for each, restarts included), its leader, restarts from the
 * same data dir and port, joins of new machines and removals. Built on the end-to-end
 * helpers (`NodeGroup`, `formCluster`, `agreedLeader`, `waitForVoters`), so it starts
 * nodes exactly as the tests do, and `cleanup()` kills every child by pid.
 *
 * @module
 */

import type { ClusterSecret } from "../../../src/auth/cluster_secret.ts";
import { BlixardClient, ClientError } from "../../../src/client/client.ts";
import { VOTERS_MAX_LIMIT } from "../../../src/node/membership/autopilot.ts";
import {
  agreedLeader,
  CLUSTER_WAIT_MS,
  formCluster,
  waitForVoters,
} from "../../helpers/cluster.ts";
import { NodeGroup, type NodeProcess } from "../../helpers/node_process.ts";
import { retryUntil } from "../../helpers/writer.ts";

/**
 * Most members a chaos cluster grows to (joins during membership faults included), each a
 * voter: every node gets `--max-voters` this high, since with the default cap of 5 a
 * machine joining a 5-node cluster stays a learner, and the harness waits for a voter.
 */
const MEMBERS_MAX = VOTERS_MAX_LIMIT;
/** Pause between two attempts of a wait that failed before its deadline. */
const RETRY_PAUSE_MS = 250;

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The cluster under test. */
export class ChaosCluster {
  readonly group = new NodeGroup();
  /** The process of each member id, in id order. */
  readonly #members = new Map<number, NodeProcess>();
  /** Given to every node this cluster starts (`--cluster-secret-file`). */
  readonly #args: string[];
  /** The secret of `--cluster-secret-file`, for this cluster's own clients; `null` without. */
  readonly #clusterSecret: ClusterSecret | null;
  /**
   * How long the cluster may take to recover (settle, name a leader, let a node join or
   * leave) before that counts as a failure; slower is only unavailability.
   */
  readonly recoveryMs: number;
  /** Members the harness killed and has not restarted yet: their exit is no failure. */
  readonly #killed = new Set<number>();
  #nextId = 1;

  private constructor(args: string[], clusterSecret: ClusterSecret | null, recoveryMs: number) {
    this.recoveryMs = recoveryMs;
    // A joiner (formation, membership faults) keeps trying as long as a recovery may take.
    this.#args = [
      ...args,
      "--join-timeout",
      `${Math.ceil(recoveryMs / 1000)}s`,
      "--max-voters",
      String(MEMBERS_MAX),
    ];
    this.#clusterSecret = clusterSecret;
  }

  /**
   * Forms a cluster of `size` voters the way the original usage does; `args` go to every
   * node, and `clusterSecret` (the one `args` name) to the clients that remove and leave.
   * `onCleanup` receives `cleanup()` before the first node starts, so that a signal handler
   * can stop the nodes of a cluster still forming. `recoveryMs` (default `CLUSTER_WAIT_MS`)
   * bounds each wait, forming included.
   */
  static async form(
    size: number,
    options: {
      dataDirOf?: (id: number) => string;
      args?: string[];
      clusterSecret?: ClusterSecret | null;
      onCleanup?: (cleanup: () => Promise<void>) => void;
      recoveryMs?: number;
    } = {},
  ): Promise<ChaosCluster> {
    const cluster = new ChaosCluster(
      options.args ?? [],
      options.clusterSecret ?? null,
      options.recoveryMs ?? CLUSTER_WAIT_MS,
    );
    options.onCleanup?.(() => cluster.cleanup());
    try {
      const formed = await formCluster(cluster.group, size, {
        ...(options.dataDirOf === undefined ? {} : { dataDirOf: options.dataDirOf }),
        args: cluster.#args,
        waitMs: cluster.recoveryMs,
      });
      for (const node of formed) {
        cluster.#members.set(node.id, node);
      }
      cluster.#nextId = size + 1;
      return cluster;
    } catch (error) {
      await cluster.cleanup();
      throw error;
    }
  }

  /** The members' processes, in id order (alive or not). */
  get members(): NodeProcess[] {
    return [...this.#members.values()];
  }

  /** The member with `id`. */
  member(id: number): NodeProcess {
    const node = this.#members.get(id);
    if (node === undefined) throw new Error(`node ${id} is not a member`);
    return node;
  }

  /** Members that run and are not paused. */
  live(): NodeProcess[] {
    return this.members.filter((node) => node.exitStatus === null && !node.isPaused);
  }

  /** The leader every live member names (polls until the recovery deadline). */
  async leader(): Promise<NodeProcess> {
    return await this.#untilRecovered(() => agreedLeader(this.live()));
  }

  /** Kills member `id` (-9); its exit is expected until `restart(id)`. */
  async kill(id: number): Promise<void> {
    this.#killed.add(id);
    await this.member(id).kill();
  }

  /**
   * Runs `attempt` (a wait with the helpers' own deadline) again until it succeeds or
   * `recoveryMs` passed; a member that exited by itself fails it at once.
   */
  async #untilRecovered<T>(attempt: () => Promise<T>): Promise<T> {
    const deadlineMs = performance.now() + this.recoveryMs;
    for (;;) {
      this.#assertNoneExited();
      try {
        return await attempt();
      } catch (error) {
        this.#assertNoneExited();
        if (performance.now() > deadlineMs) {
          const reason = error instanceof Error ? error.message : String(error);
          throw new Error(`not recovered within ${this.recoveryMs} ms: ${reason}`);
        }
        await sleep(RETRY_PAUSE_MS);
      }
    }
  }

  /** Fails when a member exited that the harness did not kill: a real failure, not load. */
  #assertNoneExited(): void {
    for (const node of this.#members.values()) {
      if (node.exitStatus === null || this.#killed.has(node.id)) continue;
      throw new Error(
        `node ${node.id} exited by itself with code ${node.exitStatus.code}: ` +
          node.stderr.trim().split("\n").slice(-3).join(" | ").slice(-800),
      );
    }
  }

  /** The live members but `node`. */
  othersThan(node: NodeProcess): NodeProcess[] {
    return this.live().filter((other) => other !== node);
  }

  /** Starts member `id` again, with its data dir and port (after kill -9 or an exit). */
  async restart(id: number): Promise<NodeProcess> {
    const old = this.member(id);
    if (old.exitStatus === null) throw new Error(`node ${id} still runs (pid ${old.pid})`);
    const node = await this.group.start({
      id,
      bindPort: old.bindPort,
      dataDir: old.dataDir,
      args: this.#args,
    });
    this.#members.set(id, node);
    this.#killed.delete(id);
    return node;
  }

  /**
   * Waits until every live member is a voter in a configuration of all members and they
   * name one leader, for up to `recoveryMs`.
   */
  async settle(): Promise<NodeProcess> {
    return await this.#untilRecovered(async () => {
      for (const node of this.live()) await waitForVoters(node, this.#members.size);
      return await agreedLeader(this.live());
    });
  }

  /**
   * Starts a new machine that joins through `through` (any member, by its `--peers`
   * address); returns it once it is a voter. `dataDir` puts its data elsewhere (a tmpfs).
   */
  async join(through: NodeProcess, options: { dataDir?: string } = {}): Promise<NodeProcess> {
    if (this.#members.size >= MEMBERS_MAX) throw new Error(`at most ${MEMBERS_MAX} members`);
    const id = this.#nextId++;
    const node = await this.group.start({
      id,
      peers: [through.address],
      args: this.#args,
      ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    });
    this.#members.set(id, node);
    await this.#untilRecovered(() => waitForVoters(node, this.#members.size));
    return node;
  }

  /**
   * A client of `node` (this cluster's secret, if any), connecting again until it succeeds
   * or `recoveryMs` passed: a loaded machine may take longer than one attempt.
   */
  async connect(
    node: NodeProcess,
    options: { attemptTimeoutMs?: number } = {},
  ): Promise<BlixardClient> {
    return await retryUntil(
      performance.now() + this.recoveryMs,
      () => BlixardClient.connect(node.address, { ...options, clusterSecret: this.#clusterSecret }),
    );
  }

  /**
   * Removes member `id` through a client of `through`, and forgets it (it stops by itself).
   * Asked again while refused without effect (`refusedWithoutEffect`), as an operator would.
   */
  async remove(id: number, through: NodeProcess): Promise<void> {
    const client = await this.connect(through);
    try {
      await this.#askUntilAccepted(() => client.remove(id, { timeoutMs: this.recoveryMs }));
    } finally {
      await client.close();
    }
    this.#members.delete(id);
  }

  /**
   * Asks member `id` to leave (it stops by itself) and forgets it. `leave` is sent once by
   * the CLI; here it is asked again while refused without effect, as an operator would.
   */
  async leave(id: number): Promise<void> {
    const client = await this.connect(this.member(id));
    try {
      await this.#askUntilAccepted(() => client.leave({ timeoutMs: this.recoveryMs }));
    } finally {
      await client.close();
    }
    this.#members.delete(id);
  }

  /** Runs `ask` again while it is refused without effect, until `recoveryMs` passed. */
  async #askUntilAccepted(ask: () => Promise<unknown>): Promise<void> {
    const deadlineMs = performance.now() + this.recoveryMs;
    for (let attempt = 1;; attempt++) {
      try {
        await ask();
        return;
      } catch (error) {
        if (!refusedWithoutEffect(error) || performance.now() > deadlineMs) throw error;
        await sleep(Math.min(1_000, 100 * attempt));
      }
    }
  }

  /** Resumes paused children, kills every child by pid, removes the temp data dirs. */
  async cleanup(): Promise<void> {
    await this.group.cleanup();
  }
}

/**
 * A membership request the leader refused before the log, which may pass later: the leader
 * is changing (`not_leader`, `no_leader`), or it has not heard from enough voters in its
 * last election timeout to be sure the cluster keeps a quorum (a follower just resumed, or
 * a loaded machine delayed its answers).
 */
function refusedWithoutEffect(error: unknown): boolean {
  if (!(error instanceof ClientError)) return false;
  if (error.code === "not_leader" || error.code === "no_leader") return true;
  return error.code === "invalid" && /would leave \d+ reachable of \d+ voters/.test(error.message);
}
