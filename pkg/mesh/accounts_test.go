package mesh

import (
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// accounts parses the accounts block the server would get for cfg.
func accounts(t *testing.T, cfg Config) *server.Options {
	t.Helper()
	opts := &server.Options{}
	if err := opts.ProcessConfigString(accountsConfig(cfg, "node-password-0123456789")); err != nil {
		t.Fatalf("accounts block does not parse: %v\n%s", err, accountsConfig(cfg, "x"))
	}
	return opts
}

func TestOnlyUsersWithAPasswordExistAndNobodyGetsInWithout(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Viewer.Password = "viewer-password-0123456789"
	opts := accounts(t, cfg)
	var names []string
	for _, u := range opts.Users {
		names = append(names, u.Username)
		if u.Password == "" {
			t.Errorf("user %s has no password", u.Username)
		}
	}
	slices.Sort(names)
	if want := []string{nodeUser, "viewer"}; !slices.Equal(names, want) {
		t.Fatalf("users %v, want %v (admin and sys have no password)", names, want)
	}
	if opts.NoAuthUser != "" {
		t.Fatalf("no_auth_user %q: clients without credentials must be refused", opts.NoAuthUser)
	}
	if opts.SystemAccount != SysAccount {
		t.Fatalf("system account %q", opts.SystemAccount)
	}

	cfg.Admin.Password, cfg.Sys.Password = "admin-password-0123456789", "sys-password-0123456789"
	for _, u := range accounts(t, cfg).Users {
		want := AppAccount
		if u.Username == "sys" {
			want = SysAccount
		}
		if u.Account == nil || u.Account.Name != want {
			t.Errorf("user %s in account %v, want %s", u.Username, u.Account, want)
		}
	}
}

func TestTheViewerMayPublishNoGameSubjectAndWriteNoBucket(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Viewer.Password = "viewer-password-0123456789"
	var viewer *server.User
	for _, u := range accounts(t, cfg).Users {
		if u.Username == "viewer" {
			viewer = u
		}
	}
	if viewer == nil || viewer.Permissions == nil || viewer.Permissions.Publish == nil || viewer.Permissions.Subscribe == nil {
		t.Fatalf("viewer without publish and subscribe permissions: %+v", viewer)
	}
	for _, s := range viewer.Permissions.Publish.Allow {
		for _, bad := range []string{"game.", "$KV.", ">", "$JS.API.STREAM.CREATE", "$JS.API.STREAM.UPDATE", "$JS.API.STREAM.DELETE", "$JS.API.STREAM.PURGE", "$JS.API.CONSUMER.DELETE", "_INBOX.", "tickmesh."} {
			if strings.HasPrefix(s, bad) || s == bad {
				t.Errorf("the viewer may publish %q", s)
			}
		}
	}
	if sub := viewer.Permissions.Subscribe.Allow; !slices.Equal(sub, []string{"game.>", ViewerInboxPrefix + ".>"}) {
		t.Errorf("the viewer subscribes %v", sub)
	}
}

// The node's own user publishes and subscribes the subjects only nodes use (wire.HandoffSubject,
// wire.FencedSubject, beacons) with no permission list to keep in step with them; the viewer gets none of them
// (its subscriptions are checked above, its publications may not start with "tickmesh.").
func TestTheNodeUserHasNoPermissionList(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Viewer.Password = "viewer-password-0123456789"
	for _, u := range accounts(t, cfg).Users {
		if u.Username == nodeUser && u.Permissions != nil {
			t.Fatalf("the node user has permissions %+v: every subject of wire must be allowed to it", u.Permissions)
		}
	}
}
