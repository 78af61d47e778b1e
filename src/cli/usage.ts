/**
 * The help texts of `blixard --help` and `blixard node --help` (DESIGN.md section 4a).
 * They are written out by hand so that they read well; a test checks that every flag and
 * environment variable that `parseNodeConfig()` accepts is described here.
 *
 * @module
 */

import { VERSION } from "../version.ts";

/** The help of `blixard --help`: every command on one line each. */
export const MAIN_USAGE = `blixard ${VERSION}: cluster node daemon, Raft over Iroh P2P QUIC

Usage:
  blixard node --id N [--bind host:port] [--data-dir DIR] [--peers a,b,…] [--relay-url URL]
               [--join-timeout 30s] [--log-level info] [--log-format text|json]
               [--mdns] [--mdns-interface IF] [--bootstrap-expect N] [--discovery-wait 1s]
               [--cluster-id ID] [--cluster-secret-file PATH] [--advertise ip:port]…
               [--http-bind host:port] [--max-voters 5] [--restore FILE | --force-new-cluster]
               [--join TICKET]
  blixard cluster invite  --peer host:port [--ttl 15m] [--uses 1] [--as voter|learner]
                          (prints a blx1… ticket)
  blixard cluster invites --peer host:port       (outstanding tickets)
  blixard cluster revoke-invite HASH --peer host:port
  blixard cluster status  --peer host:port [--json]
  blixard cluster leave   --peer host:port
  blixard cluster remove  --id N --peer host:port
  blixard cluster new-secret FILE                (a new secret, mode 0600)
  blixard cluster rotate-secret --data-dir DIR --cluster-secret-file OLD --new-secret-file NEW
  blixard cluster dns-records --name NAME --peer host:port   (zone-file TXT lines)
  blixard cluster backup  FILE --peer host:port   (consistent image of the replicated state)
  blixard kv put KEY VALUE --peer host:port      (prints the commit index)
  blixard kv get KEY       --peer host:port      (linearizable; exit 1 when absent)
  blixard kv delete KEY    --peer host:port
  blixard kv list [PREFIX] --peer host:port
  blixard --help | --version

Run 'blixard node --help' for the flags and environment variables of a node. The cluster
and kv commands take --cluster-secret-file PATH (or BLIXARD_CLUSTER_SECRET_FILE, or
BLIXARD_CLUSTER_SECRET) when the cluster has a secret. --peer may be dns:NAME, looked up
with --dns-server ip[:port] when given. Identities they verified are kept in
$XDG_CACHE_HOME/blixard/peers.json (default ~/.cache/blixard/), so that a repeated command
skips the /bootstrap fetch; --no-cache bypasses it.

Exit codes: 0 success, 1 operation failed, 2 usage error.
`;

/** The help of `blixard node --help`: every flag, its variable, rule and default. */
export const NODE_USAGE = `Usage: blixard node --id N [flags]

Runs a cluster node. With Raft state in its data dir it restarts as that member; otherwise,
with no --peers it starts a new single-node cluster, and with --peers it joins the cluster
that one of them belongs to.

Flags:
  --id N                    Cluster node id, an integer ≥ 1. Required.
  --bind host:port          UDP address of the P2P endpoint. The HTTP server listens on the
                            same host at port+1000, so the port must be 1–64535.
                            IPv6 in brackets: [::1]:7001. Default: 127.0.0.1:(7000+N).
                            An IP address binds only there (the other IP family only on
                            loopback); 0.0.0.0 or [::] listens on every interface.
  --advertise ip:port       P2P address peers should dial (NAT, containers, several
                            interfaces), in /bootstrap and in the member record. Repeatable or
                            comma-separated, at most 16. Default: the --bind address; for
                            0.0.0.0 or [::], the addresses of the interfaces it covers.
  --http-bind host:port     Where the HTTP server listens instead of the --bind host at
                            port+1000, e.g. 127.0.0.1:9100 to keep /metrics local. Joiners
                            given this node as host:port still fetch port+1000: give them
                            http://host:port/bootstrap instead. Default: --bind host, port+1000.
  --data-dir DIR            Holds the Raft log and state and the identity key (created 0700,
                            locked against a second node). Default: ./data<N>.
  --peers a,b,…             Members to join through, comma-separated. Each is host:port (a
                            member's --bind address; its /bootstrap is fetched from port+1000),
                            an http:// or https:// URL of a /bootstrap endpoint, or dns:NAME
                            (TXT records: each a host:port, a URL, or a member's identity as
                            'blixard cluster dns-records' prints it). Default: none.
  --join TICKET             Join by an invite ticket (blixard cluster invite prints it): no
                            --peers, no HTTP and no secret needed; with a cluster secret the
                            node receives it and keeps it in DIR/cluster.secret (0600).
                            Ignored on a restart. Also BLIXARD_JOIN_TICKET.
  --dns-server ip[:port]    Name server for dns:NAME peers (port 53 unless given).
                            Default: the system's resolver.
  --relay-url URL           Self-hosted iroh relay (http or https). Default: none, relays off.
  --join-timeout DURATION   How long to keep trying to join: 500ms, 30s, 2m, 1h. Default: 30s.
  --max-voters N            While this node leads, it promotes caught-up learners to voters up
                            to N (odd, 1 to 9); later nodes stay learners, and /status says
                            why. Give every node the same N. Default: 5.
  --log-level LEVEL         trace, debug, info, warning or error. Default: info.
  --log-format FORMAT       text or json, one record per line on stderr. Default: text.
  --mdns, --no-mdns         mDNS discovery: advertise this node as _blixard._udp.local on the
                            local link, and find a cluster to join there (raced against
                            --peers). Off: nothing multicast is sent or listened to.
                            Default: off.
  --mdns-interface IF       Interface for mDNS, by name (eth0) or IPv4 address. Default: the
                            interface of --bind (every interface when it is 0.0.0.0).
  --bootstrap-expect N      With --mdns and no --peers: once N nodes (this one included) see
                            each other and none is in a cluster, the lowest id founds one and
                            the others join it. Start exactly N nodes with the same N.
  --discovery-wait DURATION With --mdns, no --peers and no --bootstrap-expect: how long to look
                            for a cluster to join before founding one. Default: 1s.
  --cluster-id ID           Join only the cluster with this id (found by mDNS); a node that
                            founds one gives it this id. Default: any; a random id when
                            founding.
  --cluster-secret-file PATH
                            File holding the cluster secret: 32 random bytes as 64 hex digits or
                            44 base64 characters (blixard cluster new-secret FILE writes one),
                            the same on every node, mode 0600 (a file that group or others may
                            access is refused; an empty one is a usage error). The data dir
                            records its fingerprint: a restart without it, or with another, is
                            refused. /bootstrap is signed with it, joiners
                            and clients must prove it, and a joiner refuses a seed whose
                            /bootstrap is not signed with it. Without a secret the node warns
                            that anyone who can reach its ports may join. Default: none.
  --restore FILE            Found a new cluster, with a new cluster id, from a backup written by
                            'blixard cluster backup'. The data dir must be empty; the file is
                            checked whole (format, checksum) before anything is written. Other
                            nodes then join this one with --peers. Flag only.
  --force-new-cluster       Recovery after a quorum is lost for good: on a surviving member,
                            rewrite the membership to this node alone, keeping its data and
                            cluster id; then add fresh nodes. Writes the lost members had
                            acknowledged but this node never received are lost: start the
                            survivor with the highest applied index. Flag only, spelled out.
  -h, --help                Show this help.

Environment:
  Every flag is also read from its variable; the flag wins, and an empty variable is unset:
  BLIXARD_ID, BLIXARD_BIND, BLIXARD_DATA_DIR, BLIXARD_PEERS, BLIXARD_RELAY_URL,
  BLIXARD_JOIN_TIMEOUT, BLIXARD_LOG_LEVEL, BLIXARD_LOG_FORMAT, BLIXARD_MDNS,
  BLIXARD_CLUSTER_SECRET_FILE, BLIXARD_ADVERTISE (comma-separated), BLIXARD_HTTP_BIND,
  BLIXARD_DNS_SERVER, BLIXARD_MDNS_INTERFACE, BLIXARD_BOOTSTRAP_EXPECT,
  BLIXARD_DISCOVERY_WAIT, BLIXARD_CLUSTER_ID, BLIXARD_MAX_VOTERS.
  BLIXARD_CLUSTER_SECRET         The cluster secret itself, instead of a file (not both);
                                 --cluster-secret-file wins over it. Set but empty (or
                                 BLIXARD_CLUSTER_SECRET_FILE set but empty) is a usage error.
  BLIXARD_ENABLE_MDNS_DISCOVERY  Same as BLIXARD_MDNS, which wins when both are set.
  BLIXARD_P2P_ENABLED            Must be true or unset: Iroh P2P is the only transport.
  Booleans are true/false, 1/0 or yes/no.

HTTP (bind host, port+1000, or --http-bind): GET /bootstrap, /health, /status, /metrics.
Exit codes: 0 success, 1 operation failed, 2 usage error.
`;
