package client

import (
	"fmt"
	"time"

	"github.com/tickmesh/tickmesh/pkg/protocol"
)

// Action is what a client does after a connection closed with some code.
type Action int

const (
	// Retry: reconnect after the backoff, to the next endpoint.
	Retry Action = iota
	// ResetIdentity: forget the resume token and the sequence counter, then reconnect as a new player (4501).
	ResetIdentity
	// Final: do not reconnect (4500-4999 but 4501, as protocol.Retryable says).
	Final
)

// Classify is the action after a close with code, as the browser client's classifyClose decides it.
func Classify(code int) Action {
	switch {
	case code == protocol.CloseBadResume:
		return ResetIdentity
	case !protocol.Retryable(code):
		return Final
	}
	return Retry
}

// Stage is how far a connection got.
type Stage int

const (
	StageDial    Stage = iota // dialing failed
	StageHello                // the hello could not be sent
	StageWelcome              // connected, hello sent, no welcome yet
	StagePlay                 // welcomed
)

func (s Stage) String() string {
	return [...]string{"dial", "hello", "before welcome", "welcomed"}[s]
}

// CloseAbnormal is the code of a connection that ended without a close frame (WebSocket's 1006).
const CloseAbnormal = 1006

// Disconnect is how one connection ended.
type Disconnect struct {
	Conn  Conn
	Stage Stage
	// Welcomed is when the welcome came (zero without one).
	Welcomed time.Time
	At       time.Time // when the connection ended
	// Code is the close code the server sent, CloseAbnormal when the connection failed without one, or 1000 when
	// the client closed it (Abandoned, or its context ended).
	Code int
	// Reason is the server's close text, why the client gave the connection up, or the error.
	Reason string
	// Abandoned: the client closed the connection (watchdog, a handler's error, its context).
	Abandoned bool
	// Err is the dial, write or read error behind it, if any.
	Err error
}

func (d Disconnect) String() string {
	switch {
	case d.Abandoned:
		return "closed by the client: " + d.Reason
	case d.Code != CloseAbnormal:
		return fmt.Sprintf("closed by the server: %d %s", d.Code, d.Reason)
	}
	return d.Stage.String() + ": " + d.Reason
}

// CloseError ends Run after a final close code.
type CloseError struct {
	Code int
	Text string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("tickmesh client: closed with final code %d %s", e.Code, e.Text)
}
