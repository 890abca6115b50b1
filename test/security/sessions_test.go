package security

import (
	"testing"
	"time"

	"github.com/tickmesh/tickmesh/pkg/node"
	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
	"github.com/tickmesh/tickmesh/pkg/protocol"
	"github.com/tickmesh/tickmesh/pkg/session"
)

// TestExpiredForgedAndInvalidIDTokensAreClosedWith4501 says hello with resume tokens an attacker could hold: one
// past -token-ttl, one signed with the public development key, one signed with the cluster's key for a
// player id the cluster never issues. Each socket is closed with 4501; a current token is welcomed as the same
// player, and the lobby's other player keeps playing.
func TestExpiredForgedAndInvalidIDTokensAreClosedWith4501(t *testing.T) {
	c := nodetest.StartCluster(t, 1, func(cfg *node.Config) { cfg.Gateway.TokenTTL = time.Hour })
	n := c.Member("n1").Node
	alice := joinLobby(t, n, "alice")
	w := alice.waitWelcome()

	signer, err := session.NewSigner([]byte(c.Secrets.SessionSecret))
	if err != nil {
		t.Fatal(err)
	}
	dev, err := session.NewSigner([]byte(node.DevSessionSecret))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct{ name, token string }{
		{"expired", signer.Issue(w.Player, now.Add(-time.Hour-time.Minute))},
		{"from the future", signer.Issue(w.Player, now.Add(time.Hour))},
		{"signed with the development key", dev.Issue(w.Player, now)},
		{"invalid player id", signer.Issue("alice", now)},
		{"another player's id format", signer.Issue("P0123456789ABCDEF", now)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dialPlayer(t, wsURL(n), "mallory", nil)
			p.hello(tc.token, 1<<40)
			if code, text := p.waitClose(10 * time.Second); code != protocol.CloseBadResume {
				t.Fatalf("closed %d (%s), want %d", code, text, protocol.CloseBadResume)
			}
		})
	}

	// A token within its TTL resumes the player (and the welcome renews it).
	again := dialPlayer(t, wsURL(n), "alice-again", nil)
	again.hello(signer.Issue(w.Player, now.Add(-30*time.Minute)), 1000)
	if got := again.waitWelcome(); got.Player != w.Player || got.Resume == "" {
		t.Fatalf("resumed as %q, want %q", got.Player, w.Player)
	}
	alice.waitClose(10 * time.Second) // taken over by the resumed socket
	again.keepsPlaying(20)
}
