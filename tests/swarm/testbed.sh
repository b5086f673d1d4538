#!/usr/bin/env bash
# A three-node Docker Swarm on this one machine, for the engine tests marked `swarm` and for CI.
#
#   bash tests/swarm/testbed.sh up      # start (idempotently) three dockerd, one per network namespace, joined
#   bash tests/swarm/testbed.sh env     # print the node addresses (export lines), e.g. eval "$(... env)"
#   bash tests/swarm/testbed.sh stop-node N / start-node N   # stop / start node N's dockerd (a failed node)
#   bash tests/swarm/testbed.sh down    # stop and remove everything `up` made (idempotent)
#
# Layout (root needed; see shared/reference/swarm-netns-here.md):
# - a network namespace of the bed's own, asw-br, holding the bridge br0 (10.251.0.1/24): the host's own network is
#   never touched; each node N (1..3) is a namespace aswN with eth0 = 10.251.0.1N/24, a veth into br0 (a second
#   bed beside this one: another $AGENCYSTACK_SWARM_PREFIX for "asw", $AGENCYSTACK_SWARM_NET for "10.251.0" and
#   its own $AGENCYSTACK_SWARM_RUN_ROOT and $AGENCYSTACK_SWARM_DATA_ROOT);
# - node N's dockerd (Debian docker.io, vfs, --iptables=false --bridge=none) runs in aswN (nsenter --net, NOT
#   `ip netns exec`: that remounts /sys and dockerd dies with "Devices cgroup isn't mounted") and in a UTS
#   namespace of its own with hostname swarmN (nodes are told apart by name); its data under $DATA_ROOT/nodeN,
#   its exec root, pid file and socket under $RUN_ROOT (the socket is unix:///run/agencystack-swarm/nodeN.sock);
# - node 1 runs `swarm init`, nodes 2 and 3 join as managers: three managers, so losing one keeps the cluster
#   operable (a quorum of two);
# - the images the swarm tests need ($SWARM_IMAGES) are saved from the shared test engine ($DOCKER_HOST, default
#   unix:///run/agencystack-test/docker.sock) and loaded into every node: no registry is reachable here.
# What this bed cannot do: there is no IPVS/iptables in these engines, so the service VIP and the ingress routing
# mesh do not work: services use endpoint_mode dnsrr and publish ports in host mode.
set -euo pipefail

RUN_ROOT="${AGENCYSTACK_SWARM_RUN_ROOT:-/run/agencystack-swarm}"
DATA_ROOT="${AGENCYSTACK_SWARM_DATA_ROOT:-/var/lib/agencystack-swarm}"
SOURCE="${DOCKER_HOST:-unix:///run/agencystack-test/docker.sock}"
SWARM_IMAGES="${SWARM_IMAGES:-agencystack-test/busybox:1 agencystack-test/postgres:15 agencystack-test/traefik:3}"
NODES=(1 2 3)
PREFIX="${AGENCYSTACK_SWARM_PREFIX:-asw}"
BRIDGE_NS="$PREFIX-br"
NET="${AGENCYSTACK_SWARM_NET:-10.251.0}"
WAIT=${AGENCYSTACK_SWARM_WAIT:-90}

log() { echo "swarm-testbed: $*" >&2; }
sock() { echo "unix://$RUN_ROOT/node$1.sock"; }
d() { local n=$1; shift; docker -H "$(sock "$n")" "$@"; }
answers() { timeout 10 docker -H "$(sock "$1")" version >/dev/null 2>&1; }
pid_of() { cat "$RUN_ROOT/node$1.pid" 2>/dev/null || true; }

need() {
  if [[ $EUID -ne 0 ]]; then log "needs root (network namespaces, dockerd)"; exit 1; fi
  for bin in ip nsenter unshare dockerd docker; do
    command -v "$bin" >/dev/null || { log "'$bin' not found (iproute2, util-linux, docker.io)"; exit 1; }
  done
}

network_up() {
  ip netns list | grep -qw "$BRIDGE_NS" || ip netns add "$BRIDGE_NS"
  ip -n "$BRIDGE_NS" link show br0 >/dev/null 2>&1 || {
    ip -n "$BRIDGE_NS" link add br0 type bridge
    ip -n "$BRIDGE_NS" addr add "$NET.1/24" dev br0
  }
  ip -n "$BRIDGE_NS" link set lo up
  ip -n "$BRIDGE_NS" link set br0 up
  for n in "${NODES[@]}"; do
    ip netns list | grep -qw "$PREFIX$n" || ip netns add "$PREFIX$n"
    if ! ip -n "$PREFIX$n" link show eth0 >/dev/null 2>&1; then
      ip -n "$BRIDGE_NS" link add "vsw$n" type veth peer name eth0 netns "$PREFIX$n"
      ip -n "$BRIDGE_NS" link set "vsw$n" master br0 up
      ip -n "$PREFIX$n" addr add "$NET.1$n/24" dev eth0
    fi
    ip -n "$PREFIX$n" link set eth0 up
    ip -n "$PREFIX$n" link set lo up
  done
}

start_node() {
  local n=$1
  answers "$n" && return 0
  local pid; pid=$(pid_of "$n")
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait_gone "$pid"; fi
  rm -f "$RUN_ROOT/node$n.pid" "$RUN_ROOT/node$n.sock"
  mkdir -p "$DATA_ROOT/node$n/data" "$RUN_ROOT/node$n"
  # setsid: the daemon outlives this script; its own UTS namespace gives it its own hostname
  setsid nohup nsenter --net="/run/netns/$PREFIX$n" unshare --uts sh -c "hostname swarm$n && exec dockerd \
    --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
    --data-root '$DATA_ROOT/node$n/data' --exec-root '$RUN_ROOT/node$n' \
    -H '$(sock "$n")' --pidfile '$RUN_ROOT/node$n.pid' \
    --default-address-pool base=10.242.0.0/16,size=24" \
    >>"$DATA_ROOT/node$n.log" 2>&1 </dev/null &
}

wait_answers() {
  local deadline=$((SECONDS + WAIT)) n
  for n in "$@"; do
    until answers "$n"; do
      if (( SECONDS >= deadline )); then
        log "node $n's dockerd did not answer within ${WAIT}s; last log lines:"; tail -n 30 "$DATA_ROOT/node$n.log" >&2
        exit 1
      fi
      sleep 0.3
    done
  done
}

wait_gone() {
  local pid=$1
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

swarm_state() { d "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unknown; }

swarm_up() {
  if [[ "$(swarm_state 1)" != active ]]; then
    d 1 swarm init --advertise-addr "$NET.11" --listen-addr "$NET.11:2377" \
      --default-addr-pool 10.243.0.0/16 --default-addr-pool-mask-length 24 >/dev/null
  fi
  local token; token=$(d 1 swarm join-token -q manager)
  for n in 2 3; do
    if [[ "$(swarm_state "$n")" != active ]]; then
      d "$n" swarm join --token "$token" --advertise-addr "$NET.1$n" --listen-addr "$NET.1$n:2377" \
        "$NET.11:2377" >/dev/null
    fi
  done
  local deadline=$((SECONDS + WAIT))
  for n in "${NODES[@]}"; do   # where the Swarm driver reaches each node's own engine (exec, volumes)
    d 1 node update --label-add "io.agencystack.engine=$(sock "$n")" "swarm$n" >/dev/null
  done
  until [[ "$(d 1 node ls --format '{{.Status}} {{.ManagerStatus}}' 2>/dev/null | grep -c '^Ready \(Leader\|Reachable\)')" == 3 ]]; do
    (( SECONDS < deadline )) || { log "the three nodes are not Ready managers within ${WAIT}s"; d 1 node ls >&2; exit 1; }
    sleep 0.5
  done
}

images_up() {
  local missing=() n image
  for n in "${NODES[@]}"; do
    for image in $SWARM_IMAGES; do
      d "$n" image inspect "$image" >/dev/null 2>&1 || missing+=("$n")
    done
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  local tar="$DATA_ROOT/images.tar"
  # shellcheck disable=SC2086
  docker -H "$SOURCE" save -o "$tar" $SWARM_IMAGES
  local pids=()
  for n in $(printf '%s\n' "${missing[@]}" | sort -u); do
    d "$n" load -q -i "$tar" >/dev/null & pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  rm -f "$tar"
}

print_env() {
  echo "export AGENCYSTACK_SWARM_MANAGER=$(sock 1)"
  for n in "${NODES[@]}"; do echo "export AGENCYSTACK_SWARM_NODE$n=$(sock "$n")"; done
  echo "export AGENCYSTACK_SWARM_BRIDGE_NS=/run/netns/$BRIDGE_NS"
}

up() {
  need
  mkdir -p "$RUN_ROOT" "$DATA_ROOT"
  network_up
  for n in "${NODES[@]}"; do start_node "$n"; done   # in parallel: wait for all of them below
  wait_answers "${NODES[@]}"
  swarm_up
  images_up
  log "up: 3 managers (no IPVS here: no service VIP and no routing mesh; use dnsrr and host-mode ports)"
  print_env
}

down() {
  local n pid
  for n in "${NODES[@]}"; do
    # leave the swarm first (quickly): a dockerd killed as a manager keeps its raft state, removed below anyway
    pid=$(pid_of "$n")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; fi
  done
  for n in "${NODES[@]}"; do
    pid=$(pid_of "$n")
    [[ -n "$pid" ]] && wait_gone "$pid"
  done
  # what a killed dockerd may leave mounted under its roots (container rootfs, netns files)
  { grep -oE " ($RUN_ROOT|$DATA_ROOT)/[^ ]*" /proc/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  for n in "${NODES[@]}"; do
    ip netns list | grep -qw "$PREFIX$n" && ip netns delete "$PREFIX$n"
  done
  ip netns list | grep -qw "$BRIDGE_NS" && ip netns delete "$BRIDGE_NS"   # takes br0 and the veths with it
  rm -rf "$RUN_ROOT" "$DATA_ROOT"
  log "down: nothing of the test bed is left"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  env) print_env ;;
  stop-node)
    pid=$(pid_of "${2:?node number}")
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; wait_gone "$pid"; fi ;;
  start-node) need; start_node "${2:?node number}"; wait_answers "$2" ;;
  *) echo "usage: $0 up|down|env|stop-node N|start-node N" >&2; exit 2 ;;
esac
