#!/usr/bin/env bash
# Checks by hand that a standard DNS-SD browser sees a Blixard node: Avahi's
# `avahi-browse -rpt _blixard._udp` must list it with its host, address, port and TXT fields.
#
# Avahi ignores loopback, so this makes two network namespaces of its own joined by a veth
# pair (10.251.0.1 and 10.251.0.2, inside the namespaces only): a node with --mdns in one,
# a private dbus-daemon and avahi-daemon for the other. Everything is removed on exit.
# Needs root and Debian's iproute2, dbus, avahi-daemon and avahi-utils.
#
# Usage: sudo scripts/avahi_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

suffix=$$
node_ns=blx-mdns-avahi-node-$suffix
avahi_ns=blx-mdns-avahi-browser-$suffix
work=$(mktemp -d /tmp/blx-avahi-XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  ip netns del "$node_ns" 2>/dev/null || true
  ip netns del "$avahi_ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$node_ns"
ip netns add "$avahi_ns"
ip link add "vn$suffix" netns "$node_ns" type veth peer name "va$suffix" netns "$avahi_ns"
ip -n "$node_ns" addr add 10.251.0.1/24 dev "vn$suffix"
ip -n "$avahi_ns" addr add 10.251.0.2/24 dev "va$suffix"
for ns in "$node_ns" "$avahi_ns"; do ip -n "$ns" link set lo up; done
ip -n "$node_ns" link set "vn$suffix" up
ip -n "$avahi_ns" link set "va$suffix" up

# A system bus of this check's own: avahi-daemon and avahi-browse talk over it.
dbus-daemon --config-file=/usr/share/dbus-1/system.conf --address="unix:path=$work/bus" \
  --nofork --nopidfile >"$work/dbus.log" 2>&1 &
pids+=($!)
export DBUS_SYSTEM_BUS_ADDRESS="unix:path=$work/bus"
for _ in $(seq 1 50); do [ -S "$work/bus" ] && break; sleep 0.1; done
cat >"$work/avahi.conf" <<CONF
[server]
allow-interfaces=va$suffix
use-ipv6=no
[publish]
disable-publishing=yes
[wide-area]
enable-wide-area=no
CONF
ip netns exec "$avahi_ns" avahi-daemon --no-drop-root --no-chroot --no-rlimits \
  -f "$work/avahi.conf" >"$work/avahi.log" 2>&1 &
pids+=($!)

head -c 32 /dev/urandom | base64 >"$work/secret"
chmod 600 "$work/secret"
ip netns exec "$node_ns" ./node_modules/deno/deno run -A main.ts node --id 1 \
  --bind 10.251.0.1:7001 --data-dir "$work/data1" --mdns \
  --cluster-secret-file "$work/secret" >"$work/node.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do grep -q "advertising" "$work/node.log" && break; sleep 0.1; done

# Let avahi hear the announcements, then browse and resolve (-r), parsable (-p), and exit (-t).
sleep 2
output=$(ip netns exec "$avahi_ns" avahi-browse -rpt _blixard._udp)
echo "$output"
if echo "$output" | grep -q '^=;.*;10\.251\.0\.1;7001;.*"node=1"'; then
  echo "avahi-browse lists the node with its address, port and TXT fields"
else
  echo "avahi-browse did not resolve the node; node log:" >&2
  cat "$work/node.log" >&2
  exit 1
fi
