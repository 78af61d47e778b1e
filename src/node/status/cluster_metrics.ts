/**
 * The cluster's metrics (issue: term, role, commit and applied index, members by role,
 * leader changes, proposals, apply lag, join duration), read from the node's state at each
 * scrape so that they can never drift from `/status`.
 *
 * @module
 */

import { type Counter, type Gauge, Histogram } from "../../http/metric_registry.ts";
import { defineCounter, defineGauge, METRIC_PREFIX, type NodeMetrics } from "../../http/metrics.ts";
import type { StatusJson } from "../../transport/cluster_rpcs.ts";
import type { RaftNode } from "../replication/raft_node.ts";

const ROLES = ["leader", "follower", "candidate", "learner", "joining", "stopping"] as const;

/** The join phases a histogram observes, in seconds since the join began. */
const JOIN_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Registers the cluster metrics in `metrics.registry`; returns the join histogram. */
export function registerClusterMetrics(
  metrics: NodeMetrics,
  sources: { status: () => StatusJson; raft: () => RaftNode | null },
): { observeJoinPhase: (phase: string, elapsedMs: number) => void } {
  const registry = metrics.registry;
  const gauge = (name: string, help: string, read: (status: StatusJson) => number) => {
    const metric: Gauge = defineGauge(registry, {
      name,
      help,
      labelNames: [],
      collect: () => metric.set(read(sources.status())),
    });
  };
  gauge("raft_term", "The current Raft term.", (status) => status.term);
  gauge(
    "raft_commit_index",
    "The highest log index known to be committed.",
    (status) => status.commit_index,
  );
  gauge(
    "raft_applied_index",
    "The highest log index applied to the state machine.",
    (status) => status.applied_index,
  );
  gauge(
    "raft_apply_lag_entries",
    "Committed entries not yet applied.",
    (status) => Math.max(0, status.commit_index - status.applied_index),
  );
  gauge(
    "disk_full",
    "1 while this node's disk is full (it holds its Raft state and refuses requests), else 0.",
    (status) => status.disk_full == null ? 0 : 1,
  );
  gauge(
    "disk_full_since_seconds",
    "Since when (Unix time, s) this node's disk has been full; 0 while it has room.",
    (status) => status.disk_full == null ? 0 : Date.parse(status.disk_full.since) / 1000,
  );
  gauge(
    "raft_leader_id",
    "The leader this node follows (0 when none is known).",
    (status) => status.leader_id ?? 0,
  );

  const role: Gauge<"role"> = defineGauge(registry, {
    name: "raft_role",
    help: "1 for this node's current role, 0 for the others.",
    labelNames: ["role"],
    collect: () => {
      const current = sources.status().role;
      for (const name of ROLES) role.set({ role: name }, name === current ? 1 : 0);
    },
  });
  const members: Gauge<"role"> = defineGauge(registry, {
    name: "cluster_members",
    help: "Members of the configuration in force, by role.",
    labelNames: ["role"],
    collect: () => {
      const list = sources.status().members;
      members.set({ role: "voter" }, list.filter((member) => member.role === "voter").length);
      members.set({ role: "learner" }, list.filter((member) => member.role === "learner").length);
    },
  });
  const counterFromRaft = (name: string, help: string, read: (raft: RaftNode) => number) => {
    let reported = 0;
    const counter: Counter = defineCounter(registry, {
      name,
      help,
      labelNames: [],
      collect: () => {
        const raft = sources.raft();
        if (raft === null) return;
        const value = read(raft);
        counter.inc(value - reported);
        reported = value;
      },
    });
  };
  counterFromRaft(
    "raft_leader_changes_total",
    "Times the known leader changed.",
    (raft) => raft.counters.leaderChanges,
  );
  counterFromRaft(
    "raft_proposals_total",
    "Proposals made on this node.",
    (raft) => raft.counters.proposals,
  );
  counterFromRaft(
    "raft_proposals_failed_total",
    "Proposals this node's core refused (not leader, busy, overloaded).",
    (raft) => raft.counters.proposalsFailed,
  );
  counterFromRaft(
    "disk_full_total",
    "Times this node found its disk full (each until a persist succeeded again).",
    (raft) => raft.counters.diskFullEpisodes,
  );
  counterFromRaft(
    "raft_ready_passes_total",
    "Ready batches processed (one fsync each).",
    (raft) => raft.counters.readyPasses,
  );

  const join = registry.register(
    new Histogram({
      name: `${METRIC_PREFIX}join_duration_seconds`,
      help: "Time from the start of a join to each of its phases.",
      labelNames: ["phase"],
      buckets: JOIN_BUCKETS_SECONDS,
    }),
  );
  return { observeJoinPhase: (phase, elapsedMs) => join.observe({ phase }, elapsedMs / 1000) };
}
