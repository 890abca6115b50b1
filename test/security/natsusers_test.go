package security

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickmesh/tickmesh/internal/testingutil"
	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

// connectAs connects to the client port of member name with user and password (none when user is ""),
// collecting asynchronous errors. The viewer uses its inbox prefix.
func connectAs(t *testing.T, c *nodetest.Cluster, name, user, password string) (*nats.Conn, *natsErrors, error) {
	t.Helper()
	errs := &natsErrors{}
	opts := []nats.Option{nats.MaxReconnects(0), nats.Timeout(3 * time.Second), nats.ErrorHandler(errs.handler), nats.Name("security-test")}
	if user != "" {
		opts = append(opts, nats.UserInfo(user, password))
	}
	if user == c.Secrets.ViewerUser {
		opts = append(opts, nats.CustomInboxPrefix(mesh.ViewerInboxPrefix))
	}
	nc, err := nats.Connect(c.Member(name).Node.Mesh().ClientURL(), opts...)
	if err == nil {
		t.Cleanup(nc.Close)
	}
	return nc, errs, err
}

// TestTheClientPortRefusesConnectionsWithoutCredentials: no credentials, a wrong password, the node's own user
// name with a guess, and sys/sys are all refused.
func TestTheClientPortRefusesConnectionsWithoutCredentials(t *testing.T) {
	c := nodetest.StartCluster(t, 1)
	for _, tc := range []struct{ user, pass string }{
		{"", ""}, {c.Secrets.AdminUser, "not-the-password"}, {"tickmesh-node", "tickmesh-node"}, {"sys", "sys"}, {"app", ""},
	} {
		if nc, _, err := connectAs(t, c, "n1", tc.user, tc.pass); err == nil {
			nc.Close()
			t.Errorf("connected as %q/%q", tc.user, tc.pass)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("as %q: %v, want an authorization error", tc.user, err)
		}
	}
}

// TestTheSystemUserExistsOnlyWithItsPassword: without SYS_PASSWORD nobody reaches the system account (the old
// development default sys/sys included); with it, the sys user can ask the servers for their state.
func TestTheSystemUserExistsOnlyWithItsPassword(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) { cfg.Mesh.Sys.Password = "" })
	for _, pass := range []string{"", "sys", c.Secrets.SysPassword} {
		if nc, _, err := connectAs(t, c, "n1", "sys", pass); err == nil {
			nc.Close()
			t.Errorf("sys logged in with %q although SYS_PASSWORD is unset", pass)
		}
	}

	c = nodetest.StartCluster(t, 1)
	nc, _, err := connectAs(t, c, "n1", c.Secrets.SysUser, c.Secrets.SysPassword)
	if err != nil {
		t.Fatalf("sys with SYS_PASSWORD: %v", err)
	}
	msg, err := nc.Request("$SYS.REQ.SERVER.PING.VARZ", nil, 3*time.Second)
	if err != nil || !strings.Contains(string(msg.Data), `"server_name":"n1"`) {
		t.Fatalf("sys server ping: %v %.200s", err, msgData(msg))
	}
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// TestAViewerCannotForgeTicksOwnersOrInputs logs in with the viewer's credentials and tries what an attacker
// with them would: a forged tick, an owners entry, a forged input on the durable and on the live subject. The
// server refuses each (a permission violation), the lease is unchanged, and the lobby's player keeps playing.
func TestAViewerCannotForgeTicksOwnersOrInputs(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	alice := joinLobby(t, c.Member("n1").Node, "alice")
	owner, epoch := c.AgreedOwner("lobby", 0, 20*time.Second)

	nc, errs, err := connectAs(t, c, "n2", c.Secrets.ViewerUser, c.Secrets.ViewerPassword)
	if err != nil {
		t.Fatalf("viewer: %v", err)
	}
	forged := map[string][]byte{
		"game.lobby.tick":  []byte(`{"type":"tick","t":1,"players":[]}`),
		"game.lobby.input": []byte(`{"k":"input","p":"p0000000000000001","s":4503599627370496,"keys":15}`),
		"game.lobby.live":  []byte(`{"k":"input","p":"p0000000000000001","s":4503599627370496,"keys":15}`),
	}
	for subj, data := range forged {
		m := nats.NewMsg(subj)
		m.Data = data
		m.Header.Set("Tm-Epoch", "18446744073709551615")
		m.Header.Set("Tm-Seq", "1")
		if err := nc.PublishMsg(m); err != nil {
			t.Fatalf("publish %s: %v", subj, err)
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, "owners")
	if err != nil {
		t.Fatalf("the viewer binds the owners bucket: %v", err)
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
	_, werr := kv.Put(wctx, "lobby", []byte(`{"holder":"mallory","epoch":18446744073709551615}`))
	wcancel()
	if werr == nil {
		t.Fatal("the viewer wrote an owners entry")
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "MALLORY", Subjects: []string{"mallory.>"}}); err == nil {
		t.Fatal("the viewer created a stream")
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"game.lobby.tick", "game.lobby.input", "game.lobby.live", "$KV.owners.lobby", "$JS.API.STREAM.CREATE.MALLORY"} {
		testingutil.WaitFor(t, 5*time.Second, "a permission violation for "+subj, func() bool { return errs.violation(subj) })
	}

	alice.keepsPlaying(40)
	if o, e := c.AgreedOwner("lobby", 0, 5*time.Second); o != owner || e != epoch {
		t.Fatalf("the lobby moved from %s@%d to %s@%d", owner, epoch, o, e)
	}
}

// TestAViewerCanWatchTheGame: with the viewer's credentials, `sub game.>` receives ticks, `kv get owners lobby`
// reads the lease and `kv watch owners` delivers it.
func TestAViewerCanWatchTheGame(t *testing.T) {
	c := nodetest.StartCluster(t, 3)
	joinLobby(t, c.Member("n1").Node, "alice")
	owner, _ := c.AgreedOwner("lobby", 0, 20*time.Second)

	nc, errs, err := connectAs(t, c, "n3", c.Secrets.ViewerUser, c.Secrets.ViewerPassword)
	if err != nil {
		t.Fatalf("viewer: %v", err)
	}
	ticks := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe("game.>", ticks)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	select {
	case m := <-ticks:
		if !strings.HasPrefix(m.Subject, "game.lobby.") {
			t.Fatalf("got %s", m.Subject)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no message on game.> in 10 s; errors: %s", errs)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, bucket := range mesh.ViewerBuckets {
		if _, err := js.KeyValue(ctx, bucket); err != nil {
			t.Fatalf("bind %s: %v (errors: %s)", bucket, err, errs)
		}
	}
	kv, _ := js.KeyValue(ctx, "owners")
	e, err := kv.Get(ctx, "lobby")
	if err != nil || !strings.Contains(string(e.Value()), owner) {
		t.Fatalf("kv get owners lobby: %v %q (errors: %s)", err, entryValue(e), errs)
	}
	w, err := kv.Watch(ctx, "lobby")
	if err != nil {
		t.Fatalf("kv watch owners: %v (errors: %s)", err, errs)
	}
	defer w.Stop()
	select {
	case e := <-w.Updates():
		if e == nil || e.Key() != "lobby" {
			t.Fatalf("watch delivered %v first", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("kv watch delivered nothing (errors: %s)", errs)
	}
	if s := errs.String(); s != "" {
		t.Fatalf("the viewer's reads met errors: %s", s)
	}
}

func entryValue(e jetstream.KeyValueEntry) string {
	if e == nil {
		return ""
	}
	return string(e.Value())
}

// TestTheViewerContextWorksWithTheNATSCLI runs the README's recipes with the nats CLI (natscli v0.5.0) and a
// context file like the ones `task up` writes: sub, kv get and kv watch work; kv put and pub are refused.
func TestTheViewerContextWorksWithTheNATSCLI(t *testing.T) {
	natsCLI := natsBinary(t)
	c := nodetest.StartCluster(t, 1)
	joinLobby(t, c.Member("n1").Node, "alice")
	c.AgreedOwner("lobby", 0, 20*time.Second)
	ctxFile := writeContext(t, c, "viewer")

	run := func(timeout time.Duration, args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, natsCLI, append([]string{"--context", ctxFile, "--timeout", "3s"}, args...)...)
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(15*time.Second, "sub", "game.>", "--count", "3"); err != nil || !strings.Contains(out, "game.lobby.tick") {
		t.Errorf("nats sub 'game.>': %v\n%s", err, out)
	}
	if out, err := run(15*time.Second, "kv", "get", "owners", "lobby"); err != nil || !strings.Contains(out, "n1") {
		t.Errorf("nats kv get owners lobby: %v\n%s", err, out)
	}
	// kv watch runs until interrupted: it must print the lease before the timeout ends it.
	if out, _ := run(6*time.Second, "kv", "watch", "owners"); !strings.Contains(out, "lobby") {
		t.Errorf("nats kv watch owners printed no lease:\n%s", out)
	}
	if out, err := run(15*time.Second, "kv", "put", "owners", "lobby", "forged"); err == nil {
		t.Errorf("nats kv put owners lobby succeeded:\n%s", out)
	}
	if out, _ := run(15*time.Second, "pub", "game.lobby.tick", "forged"); !strings.Contains(strings.ToLower(out), "permissions violation") {
		t.Errorf("nats pub game.lobby.tick was not refused:\n%s", out)
	}
}

// natsBinary is the nats CLI, or the test is skipped: it checks the CLI recipes, which need the CLI.
func natsBinary(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("nats")
	if err != nil {
		t.Skip("the nats CLI is not installed (task tools:nats): cannot run the documented CLI recipes")
	}
	return p
}

// writeContext writes a nats CLI context for user (viewer, admin or sys) of cluster c, as `task up` does.
func writeContext(t *testing.T, c *nodetest.Cluster, user string) string {
	t.Helper()
	var urls []string
	for _, m := range c.Members() {
		urls = append(urls, m.Node.Mesh().ClientURL())
	}
	s := c.Secrets
	var name, pass, inbox string
	switch user {
	case "viewer":
		name, pass, inbox = s.ViewerUser, s.ViewerPassword, mesh.ViewerInboxPrefix
	case "admin":
		name, pass = s.AdminUser, s.AdminPassword
	case "sys":
		name, pass = s.SysUser, s.SysPassword
	}
	file := filepath.Join(t.TempDir(), user+".json")
	body := fmt.Sprintf(`{"url": %q, "user": %q, "password": %q, "inbox_prefix": %q}`, strings.Join(urls, ","), name, pass, inbox)
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return file
}
