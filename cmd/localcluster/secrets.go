package main

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/config"
	"github.com/tickmesh/tickmesh/pkg/mesh"
)

func (c *cluster) secretsFile() string { return filepath.Join(c.Dir, "secrets.env") }

// contextFile is the nats CLI context of one user of the cluster: viewer, admin or sys.
func (c *cluster) contextFile(user string) string { return filepath.Join(c.Dir, "nats", user+".json") }

// ensureSecrets reads <dir>/secrets.env, or draws the cluster's credentials and writes them there (mode 0600)
// when it does not exist yet. created reports the latter.
func (c *cluster) ensureSecrets() (s config.Secrets, created bool, err error) {
	b, err := os.ReadFile(c.secretsFile())
	if err == nil {
		s, err = config.ParseSecrets(string(b))
		if err != nil {
			return s, false, fmt.Errorf("%s: %w (delete it to draw new credentials)", c.secretsFile(), err)
		}
		return s, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return s, false, err
	}
	if s, err = config.NewSecrets(rand.Reader); err != nil {
		return s, false, err
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return s, false, err
	}
	text := "# Credentials of the local cluster, drawn by `localcluster up` (task up); every node reads them.\n" +
		"# Keep this file private. To draw new credentials, stop the cluster and delete this file.\n" +
		strings.Join(s.Env(), "\n") + "\n"
	f, err := os.OpenFile(c.secretsFile(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
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

// writeContexts writes the nats CLI contexts of the cluster's three users to <dir>/nats/ (mode 0600), with
// every node's client port so that the CLI moves on when a node is down.
func (c *cluster) writeContexts(s config.Secrets) error {
	var urls []string
	for _, n := range c.Nodes {
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
	if err := os.MkdirAll(filepath.Join(c.Dir, "nats"), 0o700); err != nil {
		return err
	}
	for name, ctx := range ctxs {
		b, err := json.MarshalIndent(ctx, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.contextFile(name), append(b, '\n'), 0o600); err != nil {
			return err
		}
	}
	return nil
}
