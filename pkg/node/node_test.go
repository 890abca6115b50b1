package node_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	cl := http.Client{Timeout: 3 * time.Second}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", url, err)
	}
	return resp.StatusCode
}

func TestStandaloneNodeServesTheGameOnItsPublicListenerAndOperationsOnItsAdminListener(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) { cfg.Pprof = true })
	n := c.Member("n1").Node
	for _, base := range []string{n.URL(), n.AdminURL()} {
		if code := testingutil.HTTPStatus(base + "/healthz"); code != 200 {
			t.Fatalf("%s/healthz = %d", base, code)
		}
		var r node.Readiness
		if code := getJSON(t, base+"/readyz", &r); code != 200 || !r.Ready {
			t.Fatalf("%s/readyz = %d %+v", base, code, r)
		}
	}
	var v node.ClusterView
	getJSON(t, n.AdminURL()+"/api/cluster", &v)
	if v.Node != "n1" || len(v.Nodes) != 1 || v.Nodes[0].Name != "n1" || v.Nodes[0].URL != n.URL() || v.Nodes[0].Admin != n.AdminURL() {
		t.Fatalf("/api/cluster = %+v", v)
	}
	for _, path := range []string{"/metrics", "/api/cluster", "/cluster.html", "/debug/pprof/"} {
		if code := testingutil.HTTPStatus(n.AdminURL() + path); code != 200 {
			t.Errorf("admin %s = %d, want 200", path, code)
		}
		if code := testingutil.HTTPStatus(n.URL() + path); code != 404 {
			t.Errorf("public %s = %d, want 404: operations are the admin listener's", path, code)
		}
	}
	if code := testingutil.HTTPStatus(n.URL() + "/"); code != 200 {
		t.Errorf("public / = %d, want the game", code)
	}
	if n.Mesh().ClientURL() == "" {
		t.Fatal("no client URL")
	}
}

func TestThreeNodesShareAReplicatedBucket(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m1, m3 := c.Member("n1").Node.Mesh(), c.Member("n3").Node.Mesh()
	if got := m1.Replicas(); got != 3 {
		t.Fatalf("replicas = %d, want 3", got)
	}
	kv1, err := m1.EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: "test", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv1.Put(ctx, "k", []byte("from n1")); err != nil {
		t.Fatal(err)
	}
	kv3, err := m3.EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: "test", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kv3.Status(ctx)
	if err != nil || st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas != 3 {
		t.Fatalf("bucket status: %v %+v", err, st)
	}
	testingutil.WaitFor(t, 10*time.Second, "value on n3", func() bool {
		e, err := kv3.Get(ctx, "k")
		return err == nil && string(e.Value()) == "from n1"
	})
	// Every node lists all three through membership.
	for _, m := range c.Members() {
		testingutil.WaitFor(t, 10*time.Second, m.Name+" sees 3 nodes", func() bool {
			var v node.ClusterView
			getJSON(t, m.Node.AdminURL()+"/api/cluster", &v)
			return len(v.Nodes) == 3
		})
	}

	// One node of three stopped: the bucket stays writable and the other two stay ready.
	c.Kill("n2")
	testingutil.WaitFor(t, 20*time.Second, "write with n2 down", func() bool {
		wctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := kv1.Put(wctx, "k", []byte("n2 down"))
		return err == nil
	})
	for _, name := range []string{"n1", "n3"} {
		n := c.Member(name).Node
		testingutil.WaitFor(t, 20*time.Second, name+" ready with n2 down", func() bool {
			return testingutil.HTTPStatus(n.URL()+"/readyz") == 200
		})
	}

	// n2 restarted on its data dir rejoins and catches up.
	m2 := c.Restart("n2")
	testingutil.WaitFor(t, 30*time.Second, "n2 ready again", func() bool {
		return testingutil.HTTPStatus(m2.Node.URL()+"/readyz") == 200
	})
	kv2, err := m2.Node.Mesh().EnsureKV(ctx, jetstream.KeyValueConfig{Bucket: "test", History: 1})
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 20*time.Second, "n2 caught up", func() bool {
		e, err := kv2.Get(ctx, "k")
		return err == nil && string(e.Value()) == "n2 down"
	})
}

func TestFourthNodeJoinsThroughOneRoute(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	m4, err := c.Start(c.JoinConfig("n4", "n2"))
	if err != nil {
		t.Fatal(err)
	}
	testingutil.WaitFor(t, 30*time.Second, "n4 ready", func() bool {
		return testingutil.HTTPStatus(m4.Node.URL()+"/readyz") == 200
	})
	testingutil.WaitFor(t, 10*time.Second, "n1 sees n4", func() bool {
		var v node.ClusterView
		getJSON(t, c.Member("n1").Node.AdminURL()+"/api/cluster", &v)
		return len(v.Nodes) == 4
	})
	if !c.Member("n1").Node.Mesh().Routed("n4") {
		t.Fatal("n1 has no route to n4")
	}
}

func TestReadyzIsUnavailableWithoutAMajority(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	n1 := c.Member("n1").Node
	c.Kill("n2")
	c.Kill("n3")
	var r node.Readiness
	testingutil.WaitFor(t, 20*time.Second, "n1 unready", func() bool {
		return getJSON(t, n1.URL()+"/readyz", &r) == 503
	})
	if len(r.Missing) == 0 {
		t.Fatalf("503 without naming what is missing: %+v", r)
	}
	c.Restart("n2")
	testingutil.WaitFor(t, 30*time.Second, "n1 ready again", func() bool {
		return getJSON(t, n1.URL()+"/readyz", &r) == 200
	})
}

// The moment every node answers /readyz with 200, the cluster is as it will stay: every node lists every node as
// ready (the node lists sent to players in welcome, and task owner's READY column, come from there), the lobby has
// an owner, and that owner leads neither the owners nor the snapshots stream (so that killing it right away fails
// over as fast as any later kill). Nothing here waits: readiness itself must imply it.
func TestWhenEveryNodeIsReadyEveryNodeListsAllAndTheLobbyOwnerLeadsNoOwnershipStream(t *testing.T) {
	c := nodetest.StartCluster(t, 3) // returns once every /readyz answered 200
	var owner string
	for _, m := range c.Members() {
		var v node.ClusterView
		getJSON(t, m.Node.AdminURL()+"/api/cluster", &v)
		ready := 0
		for _, n := range v.Nodes {
			if n.Ready {
				ready++
			}
		}
		if len(v.Nodes) != 3 || ready != 3 {
			t.Errorf("%s lists %d nodes, %d ready, as soon as every node is ready: %+v", m.Name, len(v.Nodes), ready, v.Nodes)
		}
		o, _ := m.Node.Rooms().Owner("lobby")
		if o == "" {
			t.Errorf("%s sees no lobby owner once ready", m.Name)
		}
		owner = o
	}
	for _, stream := range []string{"KV_owners", "KV_snapshots"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		leader, _, err := c.Member("n1").Node.Mesh().StreamLeader(ctx, stream)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if leader == owner {
			t.Errorf("the lobby's owner %s leads %s once every node is ready", owner, stream)
		}
	}
}
