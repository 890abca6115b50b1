//go:build unix

package gateway

import (
	"errors"
	"os"
	"syscall"
)

// awaitReadable blocks until the socket has bytes to read (or an end or error to report), or its read deadline
// passes. It consumes nothing: it peeks at one byte. Its stack is a few frames deep, so that a socket whose
// client sends nothing keeps its watcher goroutine at the smallest stack (see conn.watch).
func awaitReadable(rc syscall.RawConn) error {
	if rc == nil {
		return nil
	}
	var b [1]byte
	var perr error
	err := rc.Read(func(fd uintptr) bool {
		_, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return !errors.Is(perr, syscall.EAGAIN) && !errors.Is(perr, syscall.EINTR)
	})
	if err != nil {
		return err
	}
	// A peek error (a reset, say) is the reader's to see: the read that follows reports it.
	return nil
}

// writeNow writes what of b the socket takes without waiting, and returns how much that was: all of b, a part
// when the socket's send buffer fills, or nothing. An error means the socket is broken.
func writeNow(rc syscall.RawConn, b []byte) (int, error) {
	if rc == nil {
		return 0, nil
	}
	var n int
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), b)
		return true
	})
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return 0, nil // a flush's deadline (see flush): the flush writes it, with a deadline of its own
	}
	if err != nil {
		return 0, err
	}
	n = max(n, 0)
	if werr != nil && !errors.Is(werr, syscall.EAGAIN) && !errors.Is(werr, syscall.EINTR) {
		return n, werr
	}
	return n, nil
}
