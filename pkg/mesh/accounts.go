package mesh

import (
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/wire"
)

// AppAccount is the NATS account that holds the game's subjects, streams and buckets.
const AppAccount = "TICKMESH"

// SysAccount is the NATS system account; operators log in to it with SYS_USER/SYS_PASSWORD.
const SysAccount = "SYS"

// nodeUser is the user of the node's own in-process connection. Its password is drawn at every start and never
// leaves the process.
const nodeUser = "tickmesh-node"

// ViewerInboxPrefix is the inbox prefix of the viewer user: it may subscribe to replies under it only, so that
// it cannot read the replies of other users (the nodes' JetStream API answers). CLI contexts set it
// (inbox_prefix) and Go clients use nats.CustomInboxPrefix.
const ViewerInboxPrefix = "_INBOX_viewer"

// ViewerBuckets are the KV buckets the viewer may read and watch.
var ViewerBuckets = []string{wire.OwnersBucket, wire.SnapshotsBucket}

// viewerPermissions lets the viewer watch the game and read the lease and snapshot buckets, and nothing else:
//
//   - subscribe: every game subject (ticks, inputs, live inputs) and its own inbox;
//   - publish: its own inbox, and the JetStream API requests that only read: account and stream info, stream
//     and consumer lists, direct and stored-message gets on the viewer's buckets, consumer creation on them
//     (kv watch is an ordered push consumer) and the flow-control replies of those consumers.
//
// Nothing lets it publish a game subject, write a bucket, or create, change or delete a stream.
func viewerPermissions() string {
	pub := []string{
		ViewerInboxPrefix + ".>",
		"$JS.API.INFO",
		"$JS.API.STREAM.NAMES",
		"$JS.API.STREAM.LIST",
		"$JS.API.STREAM.INFO.*",
		"$JS.API.CONSUMER.NAMES.*",
		"$JS.API.CONSUMER.LIST.*",
		"$JS.API.CONSUMER.INFO.*.*",
	}
	for _, b := range ViewerBuckets {
		s := wire.KVStream(b)
		pub = append(pub,
			"$JS.API.DIRECT.GET."+s, "$JS.API.DIRECT.GET."+s+".>",
			"$JS.API.STREAM.MSG.GET."+s,
			"$JS.API.CONSUMER.CREATE."+s, "$JS.API.CONSUMER.CREATE."+s+".>",
			"$JS.FC."+s+".>",
		)
	}
	sub := []string{wire.AllGame, ViewerInboxPrefix + ".>"}
	return fmt.Sprintf("{ publish: { allow: %s }, subscribe: { allow: %s } }", quoteList(pub), quoteList(sub))
}

// accountsConfig is the accounts block of the embedded server: the app account (JetStream) with the node's
// own user and the admin and viewer users whose passwords are set, and the system account with the sys user
// when its password is set. There is no no_auth_user: a client without credentials is refused.
func accountsConfig(cfg Config, nodePassword string) string {
	q := strconv.Quote
	app := []string{fmt.Sprintf("{user: %s, password: %s}", q(nodeUser), q(nodePassword))}
	if cfg.Admin.Password != "" {
		app = append(app, fmt.Sprintf("{user: %s, password: %s}", q(cfg.Admin.Name), q(cfg.Admin.Password)))
	}
	if cfg.Viewer.Password != "" {
		app = append(app, fmt.Sprintf("{user: %s, password: %s, permissions: %s}", q(cfg.Viewer.Name), q(cfg.Viewer.Password), viewerPermissions()))
	}
	var sys []string
	if cfg.Sys.Password != "" {
		sys = append(sys, fmt.Sprintf("{user: %s, password: %s}", q(cfg.Sys.Name), q(cfg.Sys.Password)))
	}
	return fmt.Sprintf(`accounts: {
  %s: { jetstream: enabled, users: [ %s ] }
  %s: { users: [ %s ] }
}
system_account: %s
`, AppAccount, strings.Join(app, ", "), SysAccount, strings.Join(sys, ", "), SysAccount)
}

func quoteList(items []string) string {
	qs := make([]string, len(items))
	for i, s := range items {
		qs[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(qs, ", ") + "]"
}

// randomPassword draws the node user's password: 32 bytes from crypto/rand, hex-encoded.
func randomPassword() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("draw the node user's password: %w", err)
	}
	return fmt.Sprintf("%x", b), nil
}
