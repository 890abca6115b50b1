package security

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

// TestAGoneNodeIsRemovedFromThePeerSetWithTheDocumentedRecipe: a fourth node joins a three-node cluster and dies
// for good. JetStream keeps it as a peer (the cluster's size stays 4) until an operator removes it with the
// README's recipe, `task peer-remove -- n4`, which runs the nats CLI with the system account's context:
//
//	nats --context .tickmesh/nats/sys.json server raft peer-remove n4 --force
//
// Then every node counts 3 peers again and stays ready.
func TestAGoneNodeIsRemovedFromThePeerSetWithTheDocumentedRecipe(t *testing.T) {
	natsCLI := natsBinary(t)
	c := nodetest.StartCluster(t, 3)
	sysContext := writeContext(t, c, "sys")
	m4, err := c.Start(c.JoinConfig("n4", "n2"))
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 60*time.Second, "n4 ready", func() bool {
		code, _ := readiness(t, m4.Node)
		return code == 200
	})
	testingutil.WaitFor(t, 20*time.Second, "every node counts 4 peers", func() bool { return peersEverywhere(t, c, 4) })

	c.Kill("n4")
	time.Sleep(3 * time.Second)
	if !peersEverywhere(t, c, 4) {
		t.Fatal("the dead n4 left the peer set by itself: nothing to test")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, natsCLI, "--context", sysContext, "server", "raft", "peer-remove", "n4", "--force").CombinedOutput()
	if err != nil {
		t.Fatalf("nats server raft peer-remove n4: %v\n%s", err, out)
	}
	t.Logf("nats server raft peer-remove n4:\n%s", strings.TrimSpace(string(out)))
	testingutil.WaitFor(t, 20*time.Second, "every node counts 3 peers and is ready", func() bool { return peersEverywhere(t, c, 3) })
}

// peersEverywhere reports whether every running member answers /readyz 200 with a cluster size of want.
func peersEverywhere(t *testing.T, c *nodetest.Cluster, want int) bool {
	for _, m := range c.Members() {
		code, r := readiness(t, m.Node)
		if code != 200 || r.ClusterSize != want {
			return false
		}
	}
	return true
}
