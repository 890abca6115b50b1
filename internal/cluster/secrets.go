package cluster

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/mesh"
)

// Secrets are a cluster's credentials (pkg/config's): the nodes get them in their environment (Env), never as
// flags; the harness's NATS clients log in with them.
type Secrets = config.Secrets

// NewSecrets draws fresh credentials from crypto/rand, so that every test cluster has credentials of its own.
func NewSecrets() (Secrets, error) { return config.NewSecrets(rand.Reader) }

// AsAdmin logs a NATS connection in as s's admin user: every right in the game's account (publishing events,
// creating streams).
func AsAdmin(s Secrets) nats.Option { return nats.UserInfo(s.AdminUser, s.AdminPassword) }

// AsViewer logs a NATS connection in as s's read-only viewer: it subscribes to the game's subjects, watches the
// buckets and asks the JetStream API, with replies under the viewer's own inbox prefix.
func AsViewer(s Secrets) nats.Option {
	return func(o *nats.Options) error {
		if err := nats.UserInfo(s.ViewerUser, s.ViewerPassword)(o); err != nil {
			return err
		}
		return nats.CustomInboxPrefix(mesh.ViewerInboxPrefix)(o)
	}
}

// SecretsFile is where a state directory (cmd/localcluster's -dir) keeps its cluster's credentials: KEY=VALUE
// lines as Secrets.Env writes them, mode 0600.
func SecretsFile(dir string) string { return filepath.Join(dir, "secrets.env") }

// ContextFile is the nats CLI context of one user (viewer, admin or sys) of the cluster of a state directory.
func ContextFile(dir, user string) string { return filepath.Join(dir, "nats", user+".json") }

// ReadSecrets reads the credentials kept in dir.
func ReadSecrets(dir string) (Secrets, error) {
	b, err := os.ReadFile(SecretsFile(dir))
	if err != nil {
		return Secrets{}, err
	}
	s, err := config.ParseSecrets(string(b))
	if err != nil {
		return s, fmt.Errorf("%s: %w (delete it to draw new credentials)", SecretsFile(dir), err)
	}
	return s, nil
}

// EnsureSecrets reads the credentials kept in dir or, when there are none yet, draws them and keeps them there;
// created reports the latter. They are never drawn again while the file exists: the nodes' data (the users of
// the streams, the resume tokens players hold) goes with them.
func EnsureSecrets(dir string) (s Secrets, created bool, err error) {
	s, err = ReadSecrets(dir)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	if s, err = NewSecrets(); err != nil {
		return s, false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return s, false, err
	}
	text := "# Credentials of the local cluster, drawn by `localcluster up` (task up); every node reads them.\n" +
		"# Keep this file private. To draw new credentials, stop the cluster and delete this file.\n" +
		strings.Join(s.Env(), "\n") + "\n"
	// O_EXCL: of two commands drawing at once, one wins and the other fails instead of replacing its secrets.
	f, err := os.OpenFile(SecretsFile(dir), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return s, false, err
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return s, false, err
	}
	return s, true, f.Close()
}

// natsContext is a nats CLI context file (natscli v0.5.0 reads these keys).
type natsContext struct {
	Description string `json:"description"`
	URL         string `json:"url"`
	User        string `json:"user"`
	Password    string `json:"password"`
	InboxPrefix string `json:"inbox_prefix,omitempty"`
}

// WriteContexts writes the nats CLI contexts of the cluster's three users to dir/nats/ (mode 0600), with every
// node's client port so that the CLI moves on when a node is down.
func WriteContexts(dir string, nodes []Node, s Secrets) error {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.NATSURL())
	}
	url := strings.Join(urls, ",")
	ctxs := map[string]natsContext{
		"viewer": {Description: "Tickmesh local cluster (task up), read-only viewer: sub 'game.>', kv get/watch owners and snapshots",
			URL: url, User: s.ViewerUser, Password: s.ViewerPassword, InboxPrefix: mesh.ViewerInboxPrefix},
		"admin": {Description: "Tickmesh local cluster (task up), admin: every right in the game's account (kv edits, streams)",
			URL: url, User: s.AdminUser, Password: s.AdminPassword},
		"sys": {Description: "Tickmesh local cluster (task up), system account: server list/report, server raft peer-remove",
			URL: url, User: s.SysUser, Password: s.SysPassword},
	}
	if err := os.MkdirAll(filepath.Join(dir, "nats"), 0o700); err != nil {
		return err
	}
	for name, ctx := range ctxs {
		b, err := json.MarshalIndent(ctx, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(ContextFile(dir, name), append(b, '\n'), 0o600); err != nil {
			return err
		}
	}
	return nil
}
