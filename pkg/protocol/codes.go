package protocol

// Error codes carried by Error.Code and DecodeError.Code.
const (
	// CodeBadJSON: the frame is not valid UTF-8, not valid JSON, has trailing data, or is not a JSON object.
	CodeBadJSON = "bad_json"
	// CodeUnknownType: "type" is a string but not a client message type.
	CodeUnknownType = "unknown_type"
	// CodeBadField: a field is missing, duplicated, unknown, of the wrong type or out of range.
	CodeBadField = "bad_field"
	// CodeBadProtocol: a hello whose "protocol" is missing or not a version this server speaks (1 or 2). The server sends
	// this error and then closes with CloseBadProtocol.
	CodeBadProtocol = "bad_protocol"
	// CodeBadState: a valid message that is not allowed now (anything but hello before the welcome, or a
	// second hello).
	CodeBadState = "bad_state"
	// CodeRateLimited: the message exceeded the connection's rate limit and was dropped.
	CodeRateLimited = "rate_limited"
	// CodeNotReady: the room has no owner yet; the message was dropped.
	CodeNotReady = "not_ready"
	// CodeTooLarge: the frame exceeded the read limit and was dropped.
	CodeTooLarge = "too_large"
	// CodeRoomFull: the room has its maximum of players; the server then closes with CloseRoomFull.
	CodeRoomFull = "room_full"
	// CodeTooManyRooms: a room limit was reached: this node's (then CloseOverloaded: another node may have
	// room) or this client address's (then CloseTooManyRooms).
	CodeTooManyRooms = "too_many_rooms"
)

// WebSocket close codes sent by the server. Codes 4000-4499 are transient: the client reconnects (to
// another node if it can) with backoff. Codes 4500-4999 are final: the client does not reconnect
// automatically.
const (
	// CloseDraining: the node is shutting down.
	CloseDraining = 4000
	// CloseTooSlow: the connection's send queue stayed behind past its deadline.
	CloseTooSlow = 4001
	// CloseNoOwner: the room had no owner (was unavailable) for too long.
	CloseNoOwner = 4002
	// 4003 is reserved and never sent (an early draft used it for CloseTakenOver).

	// CloseOverloaded: the node is at its connection limit.
	CloseOverloaded = 4004
	// CloseIdle: no hello in time, or missed pongs.
	CloseIdle = 4005

	// CloseBadProtocol: protocol version mismatch (preceded by an error frame with CodeBadProtocol).
	CloseBadProtocol = 4500
	// CloseBadResume: the resume token is invalid or expired.
	CloseBadResume = 4501
	// CloseTooManyErrors: the connection caused too many errors.
	CloseTooManyErrors = 4502
	// CloseTakenOver: a newer connection of the same player took over the session.
	CloseTakenOver = 4503
	// CloseOriginNotAllowed: the page's origin is not allowed.
	CloseOriginNotAllowed = 4504
	// CloseRoomFull: the room has its maximum of players (preceded by an error frame with CodeRoomFull).
	CloseRoomFull = 4505
	// CloseTooManyRooms: the client's address is in as many distinct rooms as it may be (preceded by an error
	// frame with CodeTooManyRooms).
	CloseTooManyRooms = 4506
)

// Retryable reports whether a client should reconnect automatically (with backoff) after the connection
// closed with code, as reported by the browser's CloseEvent.code: false for the final Tickmesh codes
// 4500-4999, true for everything else: the transient Tickmesh codes 4000-4499, and any other code (1000,
// 1001, 1006 network failure, 1011, 1012, ..., and codes sent by proxies), since backoff bounds the cost of
// retrying while giving up would strand the player.
//
// After CloseBadResume the client does not retry with the same token but may start over as a new player.
func Retryable(code int) bool {
	return code < 4500 || code > 4999
}

// DecodeError is returned by DecodeClient and DecodeServer. Code is one of CodeBadJSON, CodeUnknownType,
// CodeBadField or CodeBadProtocol, so that the gateway can reply with an error frame directly (see Reply).
type DecodeError struct {
	Code    string
	Message string
}

func (e *DecodeError) Error() string {
	return "protocol: " + e.Code + ": " + e.Message
}

// Reply returns the error message to send to the client.
func (e *DecodeError) Reply() *Error {
	return &Error{Code: e.Code, Message: e.Message}
}
