package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tickmesh/tickmesh/pkg/node"
)

func TestParseMetrics(t *testing.T) {
	text := `# HELP tickmesh_room_ticks_fenced_total Ticks dropped.
# TYPE tickmesh_room_ticks_fenced_total counter
tickmesh_room_ticks_fenced_total{room="lobby"} 3
tickmesh_room_ticks_fenced_total{room="other"} 9
tickmesh_room_ticks_total{room="lobby"} 1.234e+06
tickmesh_room_step_downs_total{cause="lost",room="lobby"} 2
tickmesh_room_owned{room="lobby"} 1 1700000000000
tickmesh_odd{path="/a b"} 4

go_goroutines 42
`
	m, err := ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	want := Metrics{
		`tickmesh_room_ticks_fenced_total{room="lobby"}`:            3,
		`tickmesh_room_ticks_fenced_total{room="other"}`:            9,
		`tickmesh_room_ticks_total{room="lobby"}`:                   1234000,
		`tickmesh_room_step_downs_total{cause="lost",room="lobby"}`: 2,
		`tickmesh_room_owned{room="lobby"}`:                         1,
		`tickmesh_odd{path="/a b"}`:                                 4,
		"go_goroutines":                                             42,
	}
	if len(m) != len(want) {
		t.Errorf("parsed %v, want %v", m, want)
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if _, err := ParseMetrics(strings.NewReader("x{a=\"b\"} notanumber\n")); err == nil {
		t.Error("a value that is no number accepted")
	}
}

// TestProbesReadWhatANodeServes checks the probes against a stand-in node that serves the JSON of pkg/node's
// types, so that a field renamed there breaks here.
func TestProbesReadWhatANodeServes(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/readyz":
			rd := node.Readiness{Ready: ready, Node: "n1", Streams: map[string]string{"INPUTS": "n2"}}
			if !ready {
				rd.Missing = []string{"no JetStream meta leader"}
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			_ = json.NewEncoder(w).Encode(rd)
		case "/api/cluster":
			var v node.ClusterView
			_ = json.Unmarshal([]byte(`{"node":"n1","nodes":[{"name":"n1","url":"http://x"}],"rooms":[{"room":"lobby","owner":"n3","epoch":7}]}`), &v)
			_ = json.NewEncoder(w).Encode(v)
		case "/metrics":
			fmt.Fprintln(w, `tickmesh_room_owned{room="lobby"} 1`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	n := Node{Name: "n1", HTTP: strings.TrimPrefix(srv.URL, "http://")}
	ctx := context.Background()
	r, code, err := Readyz(ctx, n)
	if err != nil || code != http.StatusOK || r.Streams["INPUTS"] != "n2" {
		t.Fatalf("Readyz = %+v, %d, %v", r, code, err)
	}
	v, err := View(ctx, n)
	if o, e := RoomOwner(v, "lobby"); err != nil || o != "n3" || e != 7 || len(v.Nodes) != 1 {
		t.Fatalf("View = %+v, %v", v, err)
	}
	if o, _ := RoomOwner(v, "elsewhere"); o != "" {
		t.Fatalf("owner of a room not listed: %q", o)
	}
	m, err := ReadMetrics(ctx, n)
	if err != nil || m[`tickmesh_room_owned{room="lobby"}`] != 1 {
		t.Fatalf("ReadMetrics = %v, %v", m, err)
	}
	ready = false
	if h := ProbeHealth(ctx, n.URL()+"/readyz"); h.Code != http.StatusServiceUnavailable || h.String() != "503 (no JetStream meta leader)" {
		t.Fatalf("ProbeHealth = %+v", h)
	}
	srv.Close()
	if h := ProbeHealth(ctx, n.URL()+"/readyz"); h.Code != 0 || h.Detail != "refused" {
		t.Fatalf("ProbeHealth of a closed server = %+v", h)
	}
}
