package config

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/tickmesh/tickmesh/pkg/mesh"
	"github.com/tickmesh/tickmesh/pkg/node"
)

// Secrets are the credentials every node of one cluster shares, and with which operators reach its NATS client
// port. Tools that start clusters (the local launcher, tests, benchmarks) draw them with NewSecrets and pass
// them to the nodes as environment variables (Env) or straight into a node.Config (Apply).
type Secrets struct {
	ClusterUser     string // CLUSTER_USER
	ClusterPassword string // CLUSTER_PASSWORD
	SessionSecret   string // SESSION_SECRET
	AdminUser       string // ADMIN_USER
	AdminPassword   string // ADMIN_PASSWORD
	ViewerUser      string // VIEWER_USER
	ViewerPassword  string // VIEWER_PASSWORD
	SysUser         string // SYS_USER
	SysPassword     string // SYS_PASSWORD
}

// NewSecrets draws every password and the session secret from r (crypto/rand.Reader, normally): 32 bytes
// each, hex-encoded. The user names are the defaults (mesh.DefaultConfig), the route user "tickmesh-route".
func NewSecrets(r io.Reader) (Secrets, error) {
	draw := func() (string, error) {
		b := make([]byte, 32)
		if _, err := io.ReadFull(r, b); err != nil {
			return "", fmt.Errorf("draw a secret: %w", err)
		}
		return hex.EncodeToString(b), nil
	}
	d := mesh.DefaultConfig()
	s := Secrets{ClusterUser: "tickmesh-route", AdminUser: d.Admin.Name, ViewerUser: d.Viewer.Name, SysUser: d.Sys.Name}
	for _, p := range []*string{&s.ClusterPassword, &s.SessionSecret, &s.AdminPassword, &s.ViewerPassword, &s.SysPassword} {
		v, err := draw()
		if err != nil {
			return Secrets{}, err
		}
		*p = v
	}
	return s, nil
}

// secretVars pairs each environment variable with its field.
func (s *Secrets) secretVars() []struct {
	name string
	p    *string
} {
	return []struct {
		name string
		p    *string
	}{
		{"CLUSTER_USER", &s.ClusterUser}, {"CLUSTER_PASSWORD", &s.ClusterPassword}, {"SESSION_SECRET", &s.SessionSecret},
		{"ADMIN_USER", &s.AdminUser}, {"ADMIN_PASSWORD", &s.AdminPassword},
		{"VIEWER_USER", &s.ViewerUser}, {"VIEWER_PASSWORD", &s.ViewerPassword},
		{"SYS_USER", &s.SysUser}, {"SYS_PASSWORD", &s.SysPassword},
	}
}

// Env is s as KEY=VALUE environment entries, in a fixed order; empty values are left out.
func (s Secrets) Env() []string {
	var out []string
	for _, v := range s.secretVars() {
		if *v.p != "" {
			out = append(out, v.name+"="+*v.p)
		}
	}
	return out
}

// ParseSecrets reads KEY=VALUE lines (as Env writes them; blank lines and # comments are skipped). Unknown keys
// and lines without '=' are errors; keys that are absent stay empty.
func ParseSecrets(text string) (Secrets, error) {
	var s Secrets
	vars := s.secretVars()
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Secrets{}, fmt.Errorf("line %d: want KEY=VALUE", i+1)
		}
		found := false
		for _, x := range vars {
			if x.name == k {
				*x.p, found = v, true
			}
		}
		if !found {
			return Secrets{}, fmt.Errorf("line %d: unknown key %q", i+1, k)
		}
	}
	return s, nil
}

// Apply sets s in n: route credentials, the session secret and the client port's users (those with a
// password).
func (s Secrets) Apply(n *node.Config) {
	n.Mesh.RouteUser, n.Mesh.RoutePassword = s.ClusterUser, s.ClusterPassword
	n.SessionSecret = s.SessionSecret
	for _, u := range []struct {
		dst        *mesh.User
		name, pass string
	}{{&n.Mesh.Admin, s.AdminUser, s.AdminPassword}, {&n.Mesh.Viewer, s.ViewerUser, s.ViewerPassword}, {&n.Mesh.Sys, s.SysUser, s.SysPassword}} {
		if u.name != "" {
			u.dst.Name = u.name
		}
		u.dst.Password = u.pass
	}
}
