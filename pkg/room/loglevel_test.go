package room_test

import (
	"log/slog"
	"os"

	"github.com/tickmesh/tickmesh/pkg/node/nodetest"
)

// TICKMESH_TEST_LOGLEVEL (debug, info, warn, error) sets the level of the nodes' logs in this package's tests.
func init() {
	var l slog.Level
	if v := os.Getenv("TICKMESH_TEST_LOGLEVEL"); v != "" && l.UnmarshalText([]byte(v)) == nil {
		nodetest.LogLevel = l
	}
}
