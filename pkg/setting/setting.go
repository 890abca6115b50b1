// Package setting names a configuration problem: which setting and what is wrong with it. Every package that
// checks a node's settings (pkg/node, pkg/mesh) returns an *Error, and cmd/node prints it on one line and exits
// with code 2. A setting is named as the operator writes it: a flag with its dash (-http) or, for secrets that
// are read from the environment only, the environment variable (SESSION_SECRET).
//
// The package is a leaf: it imports nothing of the project, so that the packages whose configurations pkg/config
// maps can report problems in the operator's terms without importing pkg/config.
package setting

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// Error is a configuration problem.
type Error struct {
	Setting string // flag name with its dash, or environment variable
	Problem string // one line
}

func (e *Error) Error() string { return e.Setting + ": " + e.Problem }

// Errorf is an *Error for setting with a formatted problem.
func Errorf(setting, format string, args ...any) *Error {
	return &Error{Setting: setting, Problem: fmt.Sprintf(format, args...)}
}

// placeholders are parts of values that only a template or an example would hold: the values of .env.example
// all contain "replace-with", and an operator who copies a template unchanged must hear about it.
var placeholders = []string{"replace-with", "replace-me", "replaceme", "change-me", "changeme", "change-this", "placeholder",
	"example", "your-", "todo", "xxxx", "do-not-use"}

// weak are whole values too obvious to guard anything.
var weak = []string{"password", "passw0rd", "secret", "admin", "viewer", "sys", "test", "tickmesh", "nats", "route",
	"default", "letmein", "123456", "12345678", "0123456789abcdef"}

// Secret checks a secret's value: at least minLen bytes and not a placeholder or an obvious value. The problem
// never repeats the value.
func Secret(name, value string, minLen int) *Error {
	lower := strings.ToLower(value)
	for _, p := range placeholders {
		if strings.Contains(lower, p) {
			return Errorf(name, "holds a placeholder (it contains %q): set a random value, e.g. from `openssl rand -hex 32`", p)
		}
	}
	if slices.Contains(weak, lower) {
		return Errorf(name, "is an obvious value: set a random one, e.g. from `openssl rand -hex 32`")
	}
	if len(value) < minLen {
		return Errorf(name, "must be at least %d bytes, got %d: set a random value, e.g. from `openssl rand -hex 32`", minLen, len(value))
	}
	return nil
}

// Addr checks a listen address's form: host:port or :port, the port 0-65535. Its problem is an *Error.
func Addr(name, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return Errorf(name, "%q: want host:port or :port", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return Errorf(name, "%q: bad port", addr)
	}
	return nil
}
