package wire

import "errors"

var (
	// ErrBadRoom is returned for a room name that does not match [a-z0-9-]{1,32}.
	ErrBadRoom = errors.New("wire: bad room name")
	// ErrBadHeader is returned for a tick whose Tm-Epoch or Tm-Seq header is missing, not a number, or out of
	// range.
	ErrBadHeader = errors.New("wire: bad tick header")
	// ErrBadEvent is returned for an event message that does not decode.
	ErrBadEvent = errors.New("wire: bad event")
	// ErrBadBundle is returned for a tick bundle that does not decode (ReadBundle).
	ErrBadBundle = errors.New("wire: bad tick bundle")
	// ErrBadStored is returned for a copy on a StoredSubject whose stream position headers are missing or not
	// numbers (StoredPosition).
	ErrBadStored = errors.New("wire: stored copy without its stream position")
)
