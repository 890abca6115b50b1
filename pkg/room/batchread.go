package room

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Batched direct gets: one request to $JS.API.DIRECT.GET.<stream> with
//
//	{"seq": from, "next_by_subj": subject, "batch": n, "max_bytes": b}
//
// is answered by one replica of the stream with the messages of subject at or after sequence from, in order
// (each with the headers Nats-Stream, Nats-Subject, Nats-Sequence, Nats-Time-Stamp, Nats-Num-Pending and
// Nats-Last-Sequence added to its own), at most n of them, stopping after the message that brings the answer to b
// bytes or more, then a status message "204 EOB". When no message of subject is stored at or after from, the
// answer is the status "404 Message Not Found" alone. The server (nats-server v2.15 stream.go,
// getDirectRequest) ignores "up_to_seq" for this form (it bounds only "multi_last" requests), so the reader
// bounds the range itself: it asks for no more messages than there are sequences left in the range, and stops at
// the first message past it. Any replica answers, also while the stream has no leader; nats.go's jetstream
// package has no call for it (Stream.GetMsg reads one message), so it is made here on core NATS.
//
// A replica that is frozen or cut off may take a request and never answer (read.go): as readFresh does for one
// read, a batch is requested twice at once, each request routed on its own and answered on its own reply
// subject; the first reply subject to bring anything is followed and the others are ignored; a batch that
// brings nothing within readAttempt is requested again (two more requests; a late answer to an earlier one still
// counts). A followed answer that stops for readAttempt between two messages is given up, and the range goes
// on from the message after the last one delivered.
const (
	readBatch      = 256     // messages asked for per request
	readBatchBytes = 1 << 20 // bytes per answer, plus at most one message
	readRetryPause = 10 * time.Millisecond
)

// Status headers of the server's answers (nats.go keeps its names for them unexported).
const (
	statusHeader      = "Status"
	descriptionHeader = "Description"
	statusEOB         = "204"
	statusNotFound    = "404"
)

var (
	// errBatchStalled: the followed answer stopped between two messages; ask again from the next one.
	errBatchStalled = errors.New("batched direct get: answer stopped")
	// errBatchDropped: the client dropped messages of the answer (a slow consumer): ask again.
	errBatchDropped = errors.New("batched direct get: messages dropped by the client")
)

// directBatchRequest is the request of a batched direct get (server.JSApiMsgGetRequest, the fields used here).
type directBatchRequest struct {
	Seq      uint64 `json:"seq"`
	NextFor  string `json:"next_by_subj"`
	Batch    int    `json:"batch"`
	MaxBytes int    `json:"max_bytes"`
}

// readRange calls each, in order of sequence, for every message of subject stored in stream at a sequence from
// from to to (both included), with batched direct gets as described above, until every one was delivered or the
// replica that answers has none left at or after the next sequence (a 404: the range is done, as a single
// direct get would say), or until ctx ends. It returns the sequence after the last message delivered (from if
// none), and nil once the range is done or ctx's error when ctx ended first (what was delivered stays
// delivered: a caller may go on from the sequence returned). Errors of one request (a status other than those
// above, no responders, a closed connection) are retried within ctx. Gaps in the sequences are normal: the
// stream holds other subjects, and purges and deletions leave holes.
func readRange(ctx context.Context, nc *nats.Conn, stream, subject string, from, to uint64, each func(data []byte, seq uint64)) (uint64, error) {
	next := from
	var last error // the last request's error, for the caller's log
	for next <= to && ctx.Err() == nil {
		n, done, err := readBatchOnce(ctx, nc, stream, subject, next, to, each)
		next = n
		if done {
			return next, nil
		}
		if err != nil && ctx.Err() == nil {
			last = err
			if !errors.Is(err, errBatchStalled) && !errors.Is(err, errBatchDropped) {
				sleepCtx(ctx, readRetryPause)
			}
		}
	}
	switch {
	case next > to:
		return next, nil
	case last != nil:
		return next, fmt.Errorf("%w (last error: %v)", context.Cause(ctx), last)
	default:
		return next, context.Cause(ctx)
	}
}

// readBatchOnce is one batch of readRange: from from on, at most readBatch messages and readBatchBytes bytes,
// requested as described at the top of this file. It returns the sequence after the last message delivered
// (from if none), and done when the range needs no further request: its last message was delivered, the
// answer went past to, or the replica had no message of subject at or after from. Its subscription is gone
// when it returns.
func readBatchOnce(ctx context.Context, nc *nats.Conn, stream, subject string, from, to uint64, each func(data []byte, seq uint64)) (next uint64, done bool, err error) {
	next = from
	batch := readBatch
	if left := to - from; left < readBatch {
		batch = int(left) + 1
	}
	req, err := json.Marshal(directBatchRequest{Seq: from, NextFor: subject, Batch: batch, MaxBytes: readBatchBytes})
	if err != nil {
		return next, false, err
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox + ".*")
	if err != nil {
		return next, false, fmt.Errorf("batched direct get: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	api := jetstream.DefaultAPIPrefix + "DIRECT.GET." + stream
	requests := 0
	request := func() error {
		for range 2 {
			requests++
			if err := nc.PublishRequest(api, inbox+"."+strconv.Itoa(requests), req); err != nil {
				return fmt.Errorf("batched direct get: request: %w", err)
			}
		}
		return nil
	}
	if err := request(); err != nil {
		return next, false, err
	}
	var followed string // the reply subject whose answer is being read
	deadline := time.Now().Add(readAttempt)
	for {
		mctx, cancel := context.WithDeadline(ctx, deadline)
		msg, err := sub.NextMsgWithContext(mctx)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return next, false, context.Cause(ctx)
		case !errors.Is(err, context.DeadlineExceeded):
			return next, false, fmt.Errorf("batched direct get: %w", err)
		case followed != "":
			return next, false, errBatchStalled
		default: // nothing yet: ask again, still listening for the first requests' answers
			if err := request(); err != nil {
				return next, false, err
			}
			deadline = time.Now().Add(readAttempt)
			continue
		}
		if followed == "" {
			followed = msg.Subject
		} else if msg.Subject != followed {
			continue // an answer that came second
		}
		if dropped, _ := sub.Dropped(); dropped > 0 {
			return next, false, errBatchDropped
		}
		switch status := msg.Header.Get(statusHeader); status {
		case "":
		case statusEOB:
			return next, false, nil
		case statusNotFound:
			return next, true, nil
		default:
			return next, false, fmt.Errorf("batched direct get: status %s %s", status, msg.Header.Get(descriptionHeader))
		}
		seq, err := strconv.ParseUint(msg.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil || seq < next || msg.Header.Get(jetstream.SubjectHeader) != subject {
			return next, false, fmt.Errorf("batched direct get: unexpected message %q seq %q after %d",
				msg.Header.Get(jetstream.SubjectHeader), msg.Header.Get(jetstream.SequenceHeader), next-1)
		}
		if seq > to {
			return next, true, nil
		}
		each(msg.Data, seq)
		next = seq + 1
		if seq == to {
			return next, true, nil
		}
		deadline = time.Now().Add(readAttempt)
	}
}
