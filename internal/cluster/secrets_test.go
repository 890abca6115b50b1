package cluster

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/node"
)

func TestSecretsAreFreshAndComplete(t *testing.T) {
	a, err := NewSecrets()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewSecrets()
	if a.SessionSecret == b.SessionSecret || a.AdminPassword == b.AdminPassword || len(a.SessionSecret) < 32 {
		t.Fatalf("secrets not fresh: %+v %+v", a, b)
	}
	for _, key := range []string{"CLUSTER_PASSWORD=", "SESSION_SECRET=", "ADMIN_PASSWORD=", "VIEWER_PASSWORD=", "SYS_PASSWORD="} {
		if !slices.ContainsFunc(a.Env(), func(kv string) bool { return strings.HasPrefix(kv, key) && len(kv) > len(key) }) {
			t.Errorf("Env lacks %s: %v", key, a.Env())
		}
	}
	var o nats.Options
	if err := AsViewer(a)(&o); err != nil || o.User != a.ViewerUser || o.InboxPrefix != mesh.ViewerInboxPrefix {
		t.Errorf("AsViewer: %v, user %q, inbox prefix %q", err, o.User, o.InboxPrefix)
	}
}

func TestSecretsAreDrawnOnceAndContextsWritten(t *testing.T) {
	dir := t.TempDir()
	s, created, err := EnsureSecrets(dir)
	if err != nil || !created {
		t.Fatalf("first: %v %v", created, err)
	}
	again, created, err := EnsureSecrets(dir)
	if err != nil || created || again != s {
		t.Fatalf("second: %v %v, same %v", created, err, again == s)
	}
	if st, err := os.Stat(SecretsFile(dir)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("secrets.env: %v %v", st, err)
	}
	var n node.Config
	s.Apply(&n)
	if n.SessionSecret == "" || n.Mesh.RoutePassword == "" || n.Mesh.Viewer.Password == "" || n.Mesh.Sys.Password == "" {
		t.Fatalf("drawn secrets incomplete: %+v", s)
	}
	if err := WriteContexts(dir, Local(3, Ports{HTTP: 8081, NATS: 4222, Route: 6222}, dir), s); err != nil {
		t.Fatal(err)
	}
	var viewer natsContext
	b, err := os.ReadFile(ContextFile(dir, "viewer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &viewer); err != nil {
		t.Fatal(err)
	}
	if viewer.User != s.ViewerUser || viewer.Password != s.ViewerPassword || viewer.InboxPrefix != mesh.ViewerInboxPrefix ||
		viewer.URL != "nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224" {
		t.Fatalf("viewer context %+v", viewer)
	}
	if st, _ := os.Stat(ContextFile(dir, "sys")); st == nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("sys context mode: %v", st)
	}
	if err := os.WriteFile(SecretsFile(dir), []byte("NOT_A_KEY=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := EnsureSecrets(dir); err == nil {
		t.Fatal("a broken secrets.env was replaced or accepted")
	}
}
