package deploy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tickmesh/tickmesh/pkg/mesh"
)

// TestServerConfExample checks that nats/server.conf.example is a valid nats-server configuration that only
// tunes: no accounts, users, listeners, cluster or JetStream, which the node sets itself.
func TestServerConfExample(t *testing.T) {
	file := filepath.Join(root, "nats", "server.conf.example")
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	if len(opts.Accounts) > 0 || len(opts.Users) > 0 || len(opts.Nkeys) > 0 || opts.SystemAccount != "" || opts.Authorization != "" {
		t.Errorf("%s defines accounts, users or authorization: the node would skip its own accounts", file)
	}
	if opts.Port != 0 || opts.Host != "" || opts.Cluster.Port != 0 || len(opts.Routes) > 0 || opts.JetStream || opts.StoreDir != "" {
		t.Errorf("%s sets listeners, routes or JetStream, which the node's settings replace", file)
	}
	if opts.MaxPayload != 1<<20 || opts.PingInterval != 20*time.Second || opts.WriteDeadline != 5*time.Second {
		t.Errorf("tuning not read: max_payload %d, ping_interval %v, write_deadline %v", opts.MaxPayload, opts.PingInterval, opts.WriteDeadline)
	}
}

// TestServerConfExampleRuns starts a standalone node with the example (NATS_CONFIG) and waits until it is ready.
func TestServerConfExampleRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skipping the node run")
	}
	bin := nodeBinary(t)
	dir := t.TempDir()
	httpPort := freePort(t)
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"NODE_NAME=conf", fmt.Sprintf("HTTP_ADDR=127.0.0.1:%d", httpPort), fmt.Sprintf("NATS_ADDR=127.0.0.1:%d", freePort(t)),
		fmt.Sprintf("ADMIN_HTTP_ADDR=127.0.0.1:%d", freePort(t)), "SESSION_SECRET=" + drawnDotEnv(t)["SESSION_SECRET"],
		"DATA_DIR=" + filepath.Join(dir, "data"), "NATS_CONFIG=" + filepath.Join(root, "nats", "server.conf.example"),
	}
	log := filepath.Join(dir, "node.log")
	f, err := os.Create(log)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			out, _ := os.ReadFile(log)
			t.Fatalf("node exited: %v\n%s", err, out)
		default:
		}
		if resp, err := client.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", httpPort)); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(log)
			t.Fatalf("not ready after 60 s\n%s", out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// natsContext is the part of a nats CLI context file (github.com/nats-io/jsm.go/natscontext) used here.
type natsContext struct {
	Description string `json:"description"`
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	InboxPrefix string `json:"inbox_prefix"`
}

// contextKeys are the keys natscontext reads (jsm.go v0.5.0, the library of natscli v0.5.0).
var contextKeys = []string{"name", "description", "url", "socks_proxy", "token", "user", "password", "creds", "nkey",
	"cert", "key", "ca", "nsc", "jetstream_domain", "jetstream_api_prefix", "jetstream_event_prefix", "inbox_prefix",
	"user_jwt", "user_seed", "color_scheme", "tls_first", "windows_cert_store", "windows_cert_match_by", "windows_cert_match", "windows_ca_certs_match"}

// TestNATSContexts checks the committed templates of docker compose's contexts: one per user of the client
// port, each password read from the environment (the .env variable), the viewer with its own inbox prefix. The
// local cluster's contexts are written by cmd/localcluster with the drawn passwords (.tickmesh/nats/).
func TestNATSContexts(t *testing.T) {
	dir := filepath.Join(root, "nats", "contexts")
	d := mesh.DefaultConfig()
	want := map[string]natsContext{
		"tickmesh-compose-viewer.json": {URL: "nats://127.0.0.1:4222", User: d.Viewer.Name, Password: "env://VIEWER_PASSWORD", InboxPrefix: mesh.ViewerInboxPrefix},
		"tickmesh-compose-admin.json":  {URL: "nats://127.0.0.1:4222", User: d.Admin.Name, Password: "env://ADMIN_PASSWORD"},
		"tickmesh-compose-sys.json":    {URL: "nats://127.0.0.1:4222", User: d.Sys.Name, Password: "env://SYS_PASSWORD"},
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) != len(want) {
		t.Errorf("context files %v, want %d", files, len(want))
	}
	example := readDotEnv(t, filepath.Join(root, ".env.example"))
	for name, w := range want {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		var raw map[string]any
		if err := json.Unmarshal(b, &raw); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for k := range raw {
			if !slices.Contains(contextKeys, k) {
				t.Errorf("%s: %q is not a nats context setting", name, k)
			}
		}
		var c natsContext
		_ = json.Unmarshal(b, &c)
		if c != (natsContext{Description: c.Description, URL: w.URL, User: w.User, Password: w.Password, InboxPrefix: w.InboxPrefix}) {
			t.Errorf("%s: %+v; want %+v", name, c, w)
		}
		if c.Description == "" {
			t.Errorf("%s: no description", name)
		}
		if v, ok := strings.CutPrefix(c.Password, "env://"); !ok || example[v] == "" {
			t.Errorf("%s: the password must come from a variable of .env (env://NAME), got %q", name, c.Password)
		}
	}
}
