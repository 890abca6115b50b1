package plainrelay

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Config of the baseline server.
type Config struct {
	TickRate     int           // ticks per second of each room
	MaxSockets   int           // open sockets, upgrading ones included
	MaxRooms     int           // rooms with sockets
	Shards       int           // broadcaster goroutines; rooms are dealt to them round robin
	ExtraPlayers int           // players in each room's tick without a socket here (the fan-out setup's seed client)
	WriteTimeout time.Duration // one tick write to one socket; a write that takes longer drops the socket
	HelloTimeout time.Duration // the hello must arrive within this
}

// DefaultConfig is 20 ticks a second, the node's limits of sockets and rooms (pkg/gateway), one broadcaster per
// core Go may use, and a write deadline of one tick period.
func DefaultConfig() Config {
	return Config{
		TickRate: 20, MaxSockets: 20000, MaxRooms: 1000, Shards: runtime.GOMAXPROCS(0),
		WriteTimeout: 50 * time.Millisecond, HelloTimeout: 10 * time.Second,
	}
}

// Validate reports the first setting the server cannot run with.
func (c Config) Validate() error {
	switch {
	case c.TickRate < 1 || c.TickRate > 1000:
		return fmt.Errorf("plainrelay: tick rate %d out of 1..1000", c.TickRate)
	case c.MaxSockets < 1 || c.MaxRooms < 1:
		return errors.New("plainrelay: socket and room limits must be positive")
	case c.Shards < 1 || c.Shards > 256:
		return fmt.Errorf("plainrelay: shards %d out of 1..256", c.Shards)
	case c.ExtraPlayers < 0 || c.ExtraPlayers > 1000:
		return fmt.Errorf("plainrelay: extra players %d out of 0..1000", c.ExtraPlayers)
	case c.WriteTimeout <= 0 || c.HelloTimeout <= 0:
		return errors.New("plainrelay: timeouts must be positive")
	}
	return nil
}
