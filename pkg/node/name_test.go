package node

import (
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/wire"
)

// The default node name (the host name, sanitized) always passes the one rule for node names, which the wire
// applies to names it reads off the network.
func TestASanitizedNameIsAValidNodeName(t *testing.T) {
	for _, host := range []string{"", "n1", "Web-01.Example.COM", "ünïcode host", strings.Repeat("x", 100), "a_b-c"} {
		if n := SanitizeName(host); !wire.ValidNode(n) {
			t.Errorf("SanitizeName(%q) = %q, not a valid node name", host, n)
		}
	}
	for _, bad := range []string{"", "N1", "n.1", "n 1", strings.Repeat("x", wire.MaxNodeLen+1)} {
		if wire.ValidNode(bad) {
			t.Errorf("ValidNode(%q) = true", bad)
		}
	}
}
