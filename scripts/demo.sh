#!/usr/bin/env bash
# scripts/demo.sh (`make demo`): a hub and two devices on loopback, the work
# order of the product brief edited concurrently while a device is offline,
# then a same-field conflict resolved by hand. Everything runs in a temporary
# directory that is removed at the end, with every agent stopped, whatever
# happens. Needs bin/replicad (make demo builds it) and python3 (free ports,
# aligned output).
set -euo pipefail

cd "$(dirname "$0")/.."
BIN=${BIN:-$PWD/bin/replicad}
if [[ ! -x $BIN ]]; then
	echo "demo: $BIN not found: run make build (make demo does)" >&2
	exit 1
fi
if ! command -v python3 >/dev/null; then
	echo "demo: needs python3 (to pick free ports and align the output)" >&2
	exit 1
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/replicad-demo.XXXXXX")
declare -A PID=() API=() SYNC=()
NAMES=(hub device1 device2)

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	for n in "${!PID[@]}"; do
		kill -TERM "${PID[$n]}" 2>/dev/null || true
	done
	# A clean shutdown takes well under a second; after 10 s, kill.
	for _ in $(seq 100); do
		local alive=0
		for n in "${!PID[@]}"; do
			if kill -0 "${PID[$n]}" 2>/dev/null; then
				alive=1
			fi
		done
		((alive)) || break
		sleep 0.1
	done
	for n in "${!PID[@]}"; do
		kill -KILL "${PID[$n]}" 2>/dev/null || true
		wait "${PID[$n]}" 2>/dev/null || true
	done
	if ((status != 0)); then
		for n in "${!PID[@]}"; do
			if [[ -s $TMP/$n.log ]]; then
				echo "--- last lines of $n's log" >&2
				tail -n 15 "$TMP/$n.log" >&2
			fi
		done
		echo "demo failed (exit $status)" >&2
	fi
	rm -rf "$TMP"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Six free loopback ports (API and sync for each agent), held open together
# so that they are distinct. Another process could take one before the agent
# binds it; the agent then fails to start and the demo says so.
read -r -a PORTS < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(6)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
for s in ss:
    s.close()
')
i=0
for n in "${NAMES[@]}"; do
	API[$n]=127.0.0.1:${PORTS[i]}
	SYNC[$n]=127.0.0.1:${PORTS[i + 1]}
	i=$((i + 2))
done

# The same four work-order tables on every node, one per policy (the hub
# publishes them and arbitrates client-wins and server-wins).
POLICIES=(lww client-wins server-wins manual)
POLICY_FLAGS=()
for p in "${POLICIES[@]}"; do
	POLICY_FLAGS+=(--policy "wo_${p//-/_}=$p")
done

say() { printf '\n== %s\n' "$*"; }
note() { printf '   %s\n' "$*"; }

# rd NODE ARGS...: the CLI against NODE's API (JSON: stdout is a pipe).
rd() {
	local n=$1
	shift
	REPLICAD_ADDR=${API[$n]} "$BIN" "$@"
}

start() {
	local n=$1
	shift
	"$BIN" agent --data-dir "$TMP/$n" --api-addr "${API[$n]}" --sync-addr "${SYNC[$n]}" \
		--gossip-addr off "${POLICY_FLAGS[@]}" "$@" >"$TMP/$n.log" 2>&1 &
	PID[$n]=$!
	for _ in $(seq 100); do
		if rd "$n" status >/dev/null 2>&1; then
			note "$n: api ${API[$n]}, sync ${SYNC[$n]} (pid ${PID[$n]})"
			return 0
		fi
		if ! kill -0 "${PID[$n]}" 2>/dev/null; then
			echo "demo: $n exited at start" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "demo: $n did not answer in 10 s" >&2
	return 1
}

sync_node() { rd "$1" sync >/dev/null; }

# js EXPR: evaluates a Python expression over the JSON on stdin (as d).
js() { python3 -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

# show TABLE ID [FIELDS...]: the record on every replica, aligned, then
# whether they agree (with AGREE=1, a disagreement fails the demo).
show() {
	local table=$1 id=$2
	shift 2
	local n
	{
		for n in "${NAMES[@]}"; do
			printf '%s\t%s\t' "$n" "$(rd "$n" status | js '"online" if d["online"] else "OFFLINE"')"
			rd "$n" get "$table" "$id" | tr -d '\n'
			printf '\n'
		done
	} | python3 -c '
import json, os, sys
want = sys.argv[1:]
names = json.loads(os.environ.get("NODE_NAMES", "{}"))
rows, states = [], []
for line in sys.stdin:
    name, online, rec = line.rstrip("\n").split("\t", 2)
    r = json.loads(rec)
    fields = r.get("fields") or {}
    conflicts = r.get("conflicts") or {}
    cells = [name, online]
    for f in want:
        v = json.dumps(fields[f]) if f in fields else "-"
        if f in conflicts:
            v += " CONFLICT " + " | ".join("[%d] %s from %s" % (i, "(deleted)" if c.get("deleted") else json.dumps(c["value"]), names.get(c["node"], c["node"])) for i, c in enumerate(conflicts[f]))
        cells.append(v)
    rows.append(cells)
    states.append(json.dumps([fields, conflicts], sort_keys=True))
head = ["replica", "state"] + want
w = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
for r in [head] + rows:
    print("   " + "  ".join(c.ljust(w[i]) for i, c in enumerate(r)).rstrip())
if len(set(states)) == 1:
    print("   replicas agree")
elif os.environ.get("AGREE") == "1":
    print("   REPLICAS DIFFER after a sync")
    sys.exit(1)
else:
    print("   replicas differ (not synced yet)")
' "$@"
}

WO="WO-1001"

say "starting a hub and two devices on loopback (data in $TMP)"
start hub --role hub
start device1 --hub "${SYNC[hub]}"
start device2 --hub "${SYNC[hub]}"
ids=()
for n in "${NAMES[@]}"; do
	ids+=("\"$(rd "$n" status | js 'd["node"]')\": \"$n\"")
done
# NODE_NAMES maps node ids to replica names for the output.
NODE_NAMES="{$(IFS=,; echo "${ids[*]}")}"
export NODE_NAMES
note "policies (every node): ${POLICY_FLAGS[*]}"
note "the hub arbitrates client-wins and server-wins tables; its decisions are"
note "ordinary writes that reach the devices at their next sync. Every table lists"
note "concurrent candidates of a field as a conflict until one is chosen or decided."

say "the dispatcher creates work order $WO on the hub, in one table per policy"
for p in "${POLICIES[@]}"; do
	rd hub put "wo_${p//-/_}" "$WO" title="Replace pump seal" \
		start=2025-06-02T08:00 end=2025-06-02T10:00 technician=ana >/dev/null
done
sync_node device1
sync_node device2
AGREE=1 show wo_lww "$WO" title start end

say "device2 (the technician) goes offline"
rd device2 offline >/dev/null
note "device2 is $(rd device2 status | js '"online" if d["online"] else "offline"')"

say "concurrent edits: the technician changes Start Time offline, the dispatcher changes End Time"
for p in "${POLICIES[@]}"; do
	rd device2 put "wo_${p//-/_}" "$WO" start=2025-06-02T09:00 >/dev/null
	rd hub put "wo_${p//-/_}" "$WO" end=2025-06-02T12:00 >/dev/null
done
sync_node device1
note "device2 pending outbound: $(rd device2 status | js 'd["pending_outbound"]') writes"
show wo_lww "$WO" start end

say "device2 comes back online and syncs once: it returns with the hub's decisions"
rd device2 online >/dev/null
sync_node device2 # returns once the arbiter's decisions on its changes are here
sync_node device1
note "device2 pending outbound: $(rd device2 status | js 'd["pending_outbound"]') writes"
for p in "${POLICIES[@]}"; do
	t=wo_${p//-/_}
	printf '\n   table %s (policy %s)\n' "$t" "$p"
	AGREE=1 show "$t" "$WO" start end
	case $p in
	lww)
		note "design: field by field, highest HLC wins; different fields never conflict: both edits kept."
		note "today:  as designed." ;;
	client-wins)
		note "design: field by field, the change that reached the hub last wins: both edits kept"
		note "        here (different fields)."
		note "today:  as designed." ;;
	server-wins)
		note "design: record level: the hub had accepted the dispatcher's change, which the"
		note "        technician had not seen, so the technician's whole change is rejected"
		note "        (start back to 08:00 everywhere) and logged as a sync error with a retry."
		note "today:  as designed; the hub's sync errors:"
		rd hub errors --json | python3 -c 'import json,sys
for e in json.load(sys.stdin).get("errors", []):
    if e.get("table") == "wo_server_wins":
        print("          ", e.get("detail", ""))' ;;
	manual)
		note "design: only concurrent edits of the same field are conflicts: both edits kept."
		note "today:  as designed." ;;
	esac
done

say "a same-field conflict: both change End Time of $WO in wo_manual while device2 is offline"
rd device2 offline >/dev/null
rd device2 put wo_manual "$WO" end=2025-06-02T11:30 >/dev/null
rd hub put wo_manual "$WO" end=2025-06-02T13:00 >/dev/null
rd device2 online >/dev/null
sync_node device2
sync_node device1
AGREE=1 show wo_manual "$WO" start end
note "the visible value is the lww view (highest HLC); both candidates stay until someone chooses."
printf '\n   conflicts on the hub (replicad conflicts):\n'
rd hub conflicts | python3 -c '
import datetime, json, os, sys
names = json.loads(os.environ["NODE_NAMES"])
for c in json.load(sys.stdin)["conflicts"]:
    for i, k in enumerate(c["candidates"]):
        at = datetime.datetime.fromtimestamp(int(k["hlc"].split(".")[0]) / 1000, datetime.timezone.utc)
        print("   %s/%s %s  [%d] %s  written on %s (node %s) at %s UTC, hlc %s" % (c["table"], c["id"], c["field"], i,
            json.dumps(k["value"]), names.get(k["node"], "?"), k["node"], at.strftime("%H:%M:%S.%f")[:-3], k["hlc"]))
'

say "the dispatcher keeps candidate 0 on the hub: replicad resolve wo_manual $WO end --pick 0"
note "(picking writes the chosen value as a new write that has seen every candidate)"
rd hub resolve wo_manual "$WO" end --pick 0 >/dev/null
sync_node device1
sync_node device2
AGREE=1 show wo_manual "$WO" title start end technician
left=()
for n in "${NAMES[@]}"; do
	left+=("$n $(rd "$n" conflicts | js 'len(d["conflicts"])')")
done
note "conflicts left: ${left[*]}"
if [[ ${left[*]} != "hub 0 device1 0 device2 0" ]]; then
	echo "demo: conflicts remain after the resolution" >&2
	exit 1
fi

say "done: stopping the agents and removing $TMP"
