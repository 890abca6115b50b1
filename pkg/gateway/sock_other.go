//go:build !unix

package gateway

import "syscall"

// awaitReadable returns at once where sockets cannot be peeked at: the watcher then waits inside the
// WebSocket read, with a deeper stack.
func awaitReadable(syscall.RawConn) error { return nil }

// writeNow writes nothing where it cannot write without waiting: the socket's flush writes it all.
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, nil }
