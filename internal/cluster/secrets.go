package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// Secrets are the credentials every node of one cluster shares, and with which the harness's NATS clients log
// in. The nodes get them as environment variables (Env), never as flags.
type Secrets struct {
	ClusterUser     string // CLUSTER_USER: the routes between the nodes
	ClusterPassword string // CLUSTER_PASSWORD
	SessionSecret   string // SESSION_SECRET: the key of the resume tokens
	AdminUser       string // the game account's user with every right (CLIENT_USER)
	AdminPassword   string // CLIENT_PASSWORD
	SysUser         string // SYS_USER: the system account (server list, meta leader stepdown)
	SysPassword     string // SYS_PASSWORD
}

// NewSecrets draws every password and the session secret from crypto/rand (32 bytes each, hex-encoded), so that
// every test cluster has credentials of its own.
func NewSecrets() (Secrets, error) {
	s := Secrets{ClusterUser: "tickmesh-route", AdminUser: "admin", SysUser: "sys"}
	for _, p := range []*string{&s.ClusterPassword, &s.SessionSecret, &s.AdminPassword, &s.SysPassword} {
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return Secrets{}, fmt.Errorf("draw a secret: %w", err)
		}
		*p = hex.EncodeToString(b)
	}
	return s, nil
}

// Env is s as KEY=VALUE environment entries, in a fixed order; empty values are left out.
func (s Secrets) Env() []string {
	var out []string
	for _, kv := range [][2]string{
		{"CLUSTER_USER", s.ClusterUser}, {"CLUSTER_PASSWORD", s.ClusterPassword}, {"SESSION_SECRET", s.SessionSecret},
		{"CLIENT_USER", s.AdminUser}, {"CLIENT_PASSWORD", s.AdminPassword},
		{"SYS_USER", s.SysUser}, {"SYS_PASSWORD", s.SysPassword},
	} {
		if kv[1] != "" {
			out = append(out, kv[0]+"="+kv[1])
		}
	}
	return out
}
