package config

import (
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/gateway"
	"github.com/tickmesh/tickmesh/pkg/members"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/room"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// secretEnv is a valid environment for a clustered node: drawn secrets, plus extra.
func secretEnv(t *testing.T, extra map[string]string) map[string]string {
	t.Helper()
	s, err := NewSecrets(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func TestAnEmptyCommandLineGivesThePackagesDefaults(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"SESSION_SECRET": strings.Repeat("k7", 16)}))
	if err != nil {
		t.Fatal(err)
	}
	want := node.DefaultConfig()
	want.SessionSecret = c.Node.SessionSecret
	want = want.Resolved()
	got := c.Node
	got.Members.Now, want.Members.Now = nil, nil // functions are never DeepEqual
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("loaded\n%+v\nwant node.DefaultConfig()\n%+v", got, want)
	}
	// The parts are their packages' defaults, untouched by the mapping.
	if g := gateway.DefaultConfig(c.Node.Name); !reflect.DeepEqual(c.Node.Gateway, g) {
		t.Errorf("gateway %+v, want gateway.DefaultConfig %+v", c.Node.Gateway, g)
	}
	r := room.DefaultConfig(c.Node.Name)
	r.PauseThreshold = c.Node.Room.PauseThreshold // raised for slow tick rates only
	if !reflect.DeepEqual(c.Node.Room, r) {
		t.Errorf("room %+v, want room.DefaultConfig %+v", c.Node.Room, r)
	}
	m := mesh.DefaultConfig()
	if c.Node.Mesh.ClientAddr != m.ClientAddr || c.Node.Mesh.ClusterName != m.ClusterName || c.Node.Mesh.ReadyWait != m.ReadyWait {
		t.Errorf("mesh %+v, want mesh.DefaultConfig %+v", c.Node.Mesh, m)
	}
	if mb := members.DefaultConfig(); c.Node.Members.Interval != mb.Interval || c.Node.Members.Stale != mb.Stale {
		t.Errorf("members %+v, want %+v", c.Node.Members, mb)
	}
	if c.Node.Mesh.DataDir != filepath.Join("data", c.Node.Name) || c.LogLevel != "info" || c.GCPercent != DefaultGCPercent {
		t.Errorf("process defaults: %+v", c)
	}
}

// Every flag's default is the value of the field it maps to in the packages' defaults: a changed package
// default shows in -h and reaches the node, with no number to change here.
func TestEveryFlagDefaultIsThePackageDefault(t *testing.T) {
	d := node.DefaultConfig()
	want := map[string]string{
		"max-conns":          fmt.Sprint(gateway.DefaultConfig("").MaxConns),
		"max-conns-per-ip":   fmt.Sprint(d.Gateway.MaxConnsPerIP),
		"max-rooms":          fmt.Sprint(d.Gateway.MaxRooms),
		"max-rooms-per-ip":   fmt.Sprint(d.Gateway.MaxRoomsPerIP),
		"read-limit":         fmt.Sprint(d.Gateway.ReadLimit),
		"input-rate":         fmt.Sprint(d.Gateway.InputRate),
		"input-burst":        fmt.Sprint(d.Gateway.InputBurst),
		"drain-timeout":      d.Gateway.DrainTimeout.String(),
		"token-ttl":          d.Gateway.TokenTTL.String(),
		"input-batch-window": d.Gateway.BatchWindow.String(),
		"input-batch-max":    fmt.Sprint(d.Gateway.BatchMax),
		"max-pending-inputs": fmt.Sprint(d.Gateway.MaxPending),
		"tick-rate":          fmt.Sprint(room.DefaultConfig("").TickRate),
		"lease-ttl":          d.Room.LeaseTTL.String(),
		"snapshot-interval":  d.Room.SnapshotInterval.String(),
		"tick-bundle-window": d.Room.BundleWindow.String(),
		"steal-after":        d.Room.StealAfter.String(),
		"max-tombstones":     fmt.Sprint(d.Room.Sim.TombstoneCap),
		"games":              d.Games,
		"grace":              (time.Duration(d.Room.Sim.GraceTicks) * time.Second / time.Duration(d.Room.TickRate)).String(),
		"nats":               mesh.DefaultConfig().ClientAddr,
		"cluster-name":       d.Mesh.ClusterName,
		"ready-timeout":      d.Mesh.ReadyWait.String(),
		"http":               d.HTTPAddr,
		"admin-http":         d.AdminAddr,
		"dev-insecure":       "false",
		"pprof":              "false",
	}
	fs := Flags()
	for name, v := range want {
		f := fs.Lookup(name)
		if f == nil {
			t.Errorf("no flag -%s", name)
			continue
		}
		if f.DefValue != v {
			t.Errorf("-%s defaults to %q, want the package default %q", name, f.DefValue, v)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !strings.Contains(f.Usage, "(env ") {
			t.Errorf("-%s: usage names no environment variable", f.Name)
		}
	})
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	c, err := Load([]string{"-name", "n2", "-tick-rate", "30"}, env(secretEnv(t, map[string]string{"NODE_NAME": "n1", "TICK_RATE": "10", "HTTP_ADDR": ":9000"})))
	if err != nil {
		t.Fatal(err)
	}
	if c.Node.Name != "n2" || c.Node.Room.TickRate != 30 || c.Node.HTTPAddr != ":9000" {
		t.Fatalf("got %+v", c.Node)
	}
	// -grace is counted in ticks of the final tick rate.
	if got := c.Node.Room.Sim.GraceTicks; got != 15*30 {
		t.Fatalf("grace ticks %d at 30 Hz, want %d", got, 15*30)
	}
}

func TestSettingsReachTheirPackages(t *testing.T) {
	c, err := Load([]string{"-max-rooms", "50", "-max-rooms-per-ip", "3", "-max-tombstones", "77", "-token-ttl", "2h",
		"-trusted-proxies", "127.0.0.1, 10.0.0.0/8,::1", "-admin-http", "127.0.0.1:9999", "-input-rate", "12.5",
		"-input-batch-window", "5ms", "-max-pending-inputs", "1000"},
		env(secretEnv(t, map[string]string{"VIEWER_USER": "watcher", "ADMIN_HTTP_ADDR": "127.0.0.1:1", "INPUT_BATCH_MAX": "16"})))
	if err != nil {
		t.Fatal(err)
	}
	n := c.Node
	if n.Gateway.MaxRooms != 50 || n.Gateway.MaxRoomsPerIP != 3 || n.Room.Sim.TombstoneCap != 77 || n.Gateway.TokenTTL != 2*time.Hour || n.Gateway.InputRate != 12.5 {
		t.Fatalf("got %+v", n)
	}
	if n.Gateway.BatchWindow != 5*time.Millisecond || n.Gateway.BatchMax != 16 || n.Gateway.MaxPending != 1000 {
		t.Fatalf("batching %v / %d / %d", n.Gateway.BatchWindow, n.Gateway.BatchMax, n.Gateway.MaxPending)
	}
	want := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	if !reflect.DeepEqual(n.Gateway.TrustedProxies, want) {
		t.Fatalf("trusted proxies %v, want %v", n.Gateway.TrustedProxies, want)
	}
	if n.AdminAddr != "127.0.0.1:9999" || n.AdminPublicURL != "http://127.0.0.1:9999" || n.Mesh.Viewer.Name != "watcher" || n.Mesh.Viewer.Password == "" {
		t.Fatalf("got %+v", n)
	}
}

func TestPprofIsOffUnlessAsked(t *testing.T) {
	base := secretEnv(t, nil)
	c, err := Load(nil, env(base))
	if err != nil || c.Node.Pprof {
		t.Fatalf("default pprof %v, err %v", c.Node.Pprof, err)
	}
	c, err = Load(nil, env(secretEnv(t, map[string]string{"PPROF": "true"})))
	if err != nil || !c.Node.Pprof {
		t.Fatalf("PPROF=true: pprof %v, err %v", c.Node.Pprof, err)
	}
	c, err = Load([]string{"-pprof=false"}, env(secretEnv(t, map[string]string{"PPROF": "1"})))
	if err != nil || c.Node.Pprof {
		t.Fatalf("-pprof=false over PPROF=1: pprof %v, err %v", c.Node.Pprof, err)
	}
}

func TestRoutesAcceptHostPortAndURLs(t *testing.T) {
	c, err := Load([]string{"-cluster", ":6222", "-routes", "a:6222, nats-route://u:p@b:6223"}, env(secretEnv(t, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if r := c.Node.Mesh.Routes; len(r) != 2 || r[0].Host != "a:6222" || r[1].User.Username() != "u" {
		t.Fatalf("routes %v", r)
	}
}

func TestTheDevelopmentSwitchOpensRoutesAndTheSessionKeyOnly(t *testing.T) {
	c, err := Load([]string{"-cluster", ":6222", "-dev-insecure"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Node.Mesh.InsecureRoutes || string(c.Node.Secret()) != node.DevSessionSecret {
		t.Fatalf("dev: %+v", c.Node)
	}
	if got := c.Node.Insecurities(); len(got) != 2 || !strings.Contains(got[0], "ANY peer") || !strings.Contains(got[1], "PUBLIC development key") {
		t.Fatalf("insecurities %q", got)
	}
	if _, err := Load(nil, env(map[string]string{"DEV_INSECURE": "true"})); err != nil {
		t.Fatalf("DEV_INSECURE=true: %v", err)
	}
	// A secret that is set is checked with the switch too.
	_, err = Load([]string{"-dev-insecure"}, env(map[string]string{"SESSION_SECRET": "change-me"}))
	if ce := (*Error)(nil); !errors.As(err, &ce) || ce.Setting != "SESSION_SECRET" {
		t.Fatalf("placeholder secret under the switch: %v", err)
	}
	// Without the switch, with everything set, nothing is open.
	c, err = Load([]string{"-cluster", ":6222"}, env(secretEnv(t, nil)))
	if err != nil || c.Node.Insecurities() != nil {
		t.Fatalf("secure: %v %q", err, c.Node.Insecurities())
	}
}

func TestSecretsRoundTripThroughTheirFile(t *testing.T) {
	s, err := NewSecrets(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseSecrets("# comment\n\n" + strings.Join(s.Env(), "\n") + "\n")
	if err != nil || back != s {
		t.Fatalf("parsed %+v, %v; want %+v", back, err, s)
	}
	if _, err := ParseSecrets("NOPE=1\n"); err == nil {
		t.Fatal("an unknown key was accepted")
	}
	m := map[string]string{}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	c, err := Load([]string{"-cluster", ":6222"}, env(m))
	if err != nil {
		t.Fatalf("drawn secrets refused: %v", err)
	}
	var applied node.Config
	s.Apply(&applied)
	if applied.Mesh.Admin != c.Node.Mesh.Admin || applied.Mesh.Viewer != c.Node.Mesh.Viewer || applied.Mesh.Sys != c.Node.Mesh.Sys ||
		applied.Mesh.RoutePassword != c.Node.Mesh.RoutePassword || applied.SessionSecret != c.Node.SessionSecret {
		t.Fatalf("Apply and the environment disagree: %+v vs %+v", applied.Mesh, c.Node.Mesh)
	}
}

// Every refusal names its setting on one line; cmd/node's test checks the same through the binary (exit 2).
func TestBadSettingsNameTheSetting(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	key := filepath.Join(dir, "key.pem")
	for _, f := range []string{cert, key} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sec := func(extra map[string]string) map[string]string { return secretEnv(t, extra) }
	cases := []struct {
		args    []string
		env     map[string]string
		setting string
		problem string // part of the message
	}{
		{[]string{"-bogus"}, nil, "-bogus", "unknown flag"},
		{[]string{"-tick-rate", "x"}, nil, "-tick-rate", "invalid value"},
		{nil, map[string]string{"TICK_RATE": "x"}, "TICK_RATE", "not an integer"},
		{nil, map[string]string{"PPROF": "maybe"}, "PPROF", "not a boolean"},
		{nil, map[string]string{"DEV_INSECURE": "yes please"}, "DEV_INSECURE", "not a boolean"},
		{[]string{"-cluster", ":6222", "-routes", "nohost"}, sec(nil), "-routes", "want host:port"},
		{[]string{"-cluster", ":6222", "-routes", "h:99999"}, sec(nil), "-routes", "bad port"},
		{[]string{"-cluster", ":6222", "-routes", "http://h:1"}, sec(nil), "-routes", "scheme must be nats-route"},
		{[]string{"-routes", "h:6222"}, sec(nil), "-routes", "routes need -cluster"},
		{[]string{"-cluster-advertise", "h:6222"}, sec(nil), "-cluster-advertise", "needs -cluster"},
		{[]string{"-cluster", ":6222", "-cluster-advertise", ":6222"}, sec(nil), "-cluster-advertise", "want host:port"},
		{[]string{"-cluster", ":6222", "-cluster-advertise", "h:x"}, sec(nil), "-cluster-advertise", "bad port"},
		{[]string{"-http", "8080"}, sec(nil), "-http", "want host:port"},
		{[]string{"-admin-http", "9090"}, sec(nil), "-admin-http", "want host:port"},
		{[]string{"-admin-http", ":8080"}, sec(nil), "-admin-http", "is also -http"},
		{[]string{"-admin-public-url", "ftp://x"}, sec(nil), "-admin-public-url", "want http(s)"},
		{[]string{"-name", "Bad Name"}, sec(nil), "-name", "lowercase"},
		{[]string{"-lease-ttl", "1500ms"}, sec(nil), "-lease-ttl", "whole seconds"},
		{[]string{"-tick-rate", "0"}, sec(nil), "-tick-rate", "1 to 120"},
		{[]string{"-grace", "500ms"}, sec(nil), "-grace", "at least 1s"},
		{[]string{"-public-url", "ftp://x"}, sec(nil), "-public-url", "want http(s)"},
		{[]string{"-nats-config", "/does/not/exist.conf"}, sec(nil), "-nats-config", "no such file"},
		{[]string{"-max-conns-per-ip", "50", "-max-conns", "10"}, sec(nil), "-max-conns-per-ip", "want 1 to -max-conns"},
		{[]string{"-max-rooms", "0"}, sec(nil), "-max-rooms", "at least 1"},
		{[]string{"-max-rooms-per-ip", "20", "-max-rooms", "10"}, sec(nil), "-max-rooms-per-ip", "want 1 to -max-rooms"},
		{[]string{"-max-tombstones", "0"}, sec(nil), "-max-tombstones", "at least 1"},
		{[]string{"-games", "collect-*=collect"}, sec(nil), "-games", "'*'"},
		{nil, sec(map[string]string{"GAMES": "*=chess"}), "-games", "no such game"},
		{[]string{"-token-ttl", "10s"}, sec(nil), "-token-ttl", "at least 1m"},
		{[]string{"-input-batch-window", "1s"}, sec(nil), "-input-batch-window", "0 to 100ms"},
		{[]string{"-input-batch-max", "0"}, sec(nil), "-input-batch-max", "1 to 256"},
		{nil, sec(map[string]string{"INPUT_BATCH_MAX": "257"}), "-input-batch-max", "1 to 256"},
		{[]string{"-max-pending-inputs", "10"}, sec(nil), "-max-pending-inputs", "at least -input-batch-max"},
		{[]string{"-trusted-proxies", "nginx"}, sec(nil), "-trusted-proxies", "want an IP address"},
		{[]string{"-trusted-proxies", "10.0.0.1/8"}, sec(nil), "-trusted-proxies", "host bits"},
		{[]string{"-steal-after", "20s"}, sec(nil), "-steal-after", "below -lease-ttl"},
		{[]string{"-gc-percent", "5"}, sec(nil), "-gc-percent", "10-1000"},
		{nil, sec(map[string]string{"GC_PERCENT": "-1"}), "-gc-percent", "10-1000"},
		{[]string{"extra"}, nil, "arguments", "unexpected"},

		// Secure by default.
		{nil, nil, "SESSION_SECRET", "not set"},
		{nil, sec(map[string]string{"SESSION_SECRET": "short-but-random-Zq81"}), "SESSION_SECRET", "at least 32 bytes"},
		{nil, sec(map[string]string{"SESSION_SECRET": "replace-with-at-least-32-random-bytes-of-your-own"}), "SESSION_SECRET", "placeholder"},
		{nil, sec(map[string]string{"SESSION_SECRET": "change-me-change-me-change-me-change-me"}), "SESSION_SECRET", "placeholder"},
		{nil, sec(map[string]string{"SESSION_SECRET": node.DevSessionSecret}), "SESSION_SECRET", "placeholder"},
		{[]string{"-cluster", ":6222"}, sec(map[string]string{"CLUSTER_USER": "", "CLUSTER_PASSWORD": ""}), "CLUSTER_PASSWORD", "needs route credentials"},
		{[]string{"-cluster", ":6222", "-routes", "h:6222"}, sec(map[string]string{"CLUSTER_USER": "", "CLUSTER_PASSWORD": ""}), "CLUSTER_PASSWORD", "-dev-insecure"},
		{nil, sec(map[string]string{"CLUSTER_PASSWORD": ""}), "CLUSTER_USER", "set together"},
		{nil, sec(map[string]string{"CLUSTER_PASSWORD": "password"}), "CLUSTER_PASSWORD", "obvious"},
		{nil, sec(map[string]string{"CLUSTER_TOKEN": "a-token-of-enough-length-Zq81"}), "CLUSTER_TOKEN", "not both"},
		{nil, sec(map[string]string{"CLUSTER_TLS_CERT": cert, "CLUSTER_TLS_KEY": key}), "CLUSTER_TLS_CA", "verify peers"},
		{nil, sec(map[string]string{"CLUSTER_TLS_CERT": "/missing.pem", "CLUSTER_TLS_KEY": "/missing.key", "CLUSTER_TLS_CA": "/missing.ca"}), "CLUSTER_TLS_CERT", "no such file"},
		{nil, sec(map[string]string{"CLUSTER_TLS_CA": cert}), "CLUSTER_TLS_CERT", "both CLUSTER_TLS_CERT and CLUSTER_TLS_KEY"},
		{nil, sec(map[string]string{"CLIENT_USER": "operator"}), "CLIENT_USER", "ADMIN_USER"},
		{nil, sec(map[string]string{"CLIENT_PASSWORD": "operator-password"}), "CLIENT_PASSWORD", "VIEWER_USER"},
		{nil, sec(map[string]string{"SYS_PASSWORD": "sys"}), "SYS_PASSWORD", "obvious"},
		{nil, sec(map[string]string{"ADMIN_PASSWORD": "replace-with-a-random-admin-password"}), "ADMIN_PASSWORD", "placeholder"},
		{nil, sec(map[string]string{"VIEWER_PASSWORD": "short"}), "VIEWER_PASSWORD", "at least 16 bytes"},
		{nil, sec(map[string]string{"VIEWER_USER": "admin"}), "VIEWER_USER", "also ADMIN_USER"},
		{nil, sec(map[string]string{"ADMIN_USER": "tickmesh-node"}), "ADMIN_USER", "the node's own user"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " ")+" "+strings.Join(keys(tc.env), ","), func(t *testing.T) {
			_, err := Load(tc.args, env(tc.env))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *config.Error", err)
			}
			if ce.Setting != tc.setting || !strings.Contains(ce.Problem, tc.problem) {
				t.Fatalf("got %q, want setting %q with %q", err, tc.setting, tc.problem)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("message spans lines: %q", err)
			}
			for k, v := range tc.env {
				if len(v) >= 16 && strings.Contains(err.Error(), v) && strings.HasSuffix(k, "PASSWORD") {
					t.Fatalf("message repeats the secret %s: %q", k, err)
				}
			}
		})
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestGCPercentDefaultsTo50UnlessGOGCOrTheSettingSaysOtherwise(t *testing.T) {
	cases := []struct {
		args []string
		env  map[string]string
		want int
	}{
		{nil, nil, DefaultGCPercent},
		{nil, map[string]string{"GOGC": "200"}, 0}, // the runtime's own setting stays
		{[]string{"-gc-percent", "80"}, map[string]string{"GOGC": "200"}, 80},
		{nil, map[string]string{"GOGC": "200", "GC_PERCENT": "30"}, 30},
		{[]string{"-gc-percent", "0"}, nil, 0},
	}
	for _, tc := range cases {
		c, err := Load(tc.args, env(secretEnv(t, tc.env)))
		if err != nil {
			t.Fatalf("%v %v: %v", tc.args, tc.env, err)
		}
		if c.GCPercent != tc.want {
			t.Errorf("%v %v: GC percent %d, want %d", tc.args, tc.env, c.GCPercent, tc.want)
		}
	}
}
