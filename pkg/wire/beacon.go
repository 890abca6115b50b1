package wire

import (
	"fmt"
	"strconv"
	"strings"
)

// Node beacons: every node publishes a small message on core NATS at a fixed interval (pkg/room: one tick
// period). They carry no state, only proof of life: a peer that receives a node's beacons
// knows the node runs and reaches it over the routes, which is what a stream-leader election does not stop and
// a freeze or a partition does. The body is "<ticks>", the number of ticks the node has published as an owner
// since it started: a beacon whose count does not move while the node owns rooms says its owner loops stall.
const AllBeacons = "tickmesh.beacon.*"

// BeaconSubject is where node publishes its beacons. Node names are [a-z0-9_-]{1,64} (pkg/config), valid
// subject tokens.
func BeaconSubject(node string) string { return "tickmesh.beacon." + node }

// BeaconNode is the node a beacon subject names, "" when subj is not one.
func BeaconNode(subj string) string {
	node, ok := strings.CutPrefix(subj, "tickmesh.beacon.")
	if !ok || node == "" || strings.ContainsAny(node, ".*> ") {
		return ""
	}
	return node
}

// EncodeBeacon is a beacon's body.
func EncodeBeacon(ticks uint64) []byte { return strconv.AppendUint(nil, ticks, 10) }

// DecodeBeacon reads a beacon's body.
func DecodeBeacon(b []byte) (ticks uint64, err error) {
	ticks, err = strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: beacon %.32q", ErrBadEvent, b)
	}
	return ticks, nil
}
