// Package kvbatch writes several keys of one JetStream key-value bucket in one atomic batch: every write is
// checked against the revision its key had when the writer last wrote or read it (a compare-and-swap, the
// Nats-Expected-Last-Subject-Sequence header, as kv.Update sends it), and either all of them are stored, in one
// Raft proposal of the bucket's stream, or none is. A node that writes the snapshots of many rooms pays one
// replicated, synced write per round instead of one per room.
//
// The bucket's stream must allow atomic publish (nats-server 2.12+, stream option AllowAtomicPublish; see
// Allow). The protocol is the server's: every message carries Nats-Batch-Id and Nats-Batch-Sequence, the last
// one Nats-Batch-Commit and is a request whose reply is the batch's PubAck (or its error). The server refuses a
// whole batch when one check fails, without saying which key failed: callers that need to know write the keys
// one by one then (Write's error says whether a check failed, ErrConflict).
//
// The package owns no goroutines.
package kvbatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// MaxBatch is the largest batch the server accepts (streamMaxAtomicBatchSize).
const MaxBatch = 1000

var (
	// ErrConflict means a revision check failed: some key was written by somebody else since its writer last
	// knew it (or the key exists though a create was asked for). Nothing was written.
	ErrConflict = errors.New("kvbatch: a revision check failed")
	// ErrDisabled means the bucket's stream does not allow atomic batches. Nothing was written.
	ErrDisabled = errors.New("kvbatch: atomic batches not allowed on the bucket's stream")
	// ErrTooLarge means more puts than MaxBatch.
	ErrTooLarge = errors.New("kvbatch: batch too large")
)

// Put is one key to write.
type Put struct {
	Key   string
	Value []byte
	// Revision is the key's last revision as the writer knows it (its last write, or the revision of the entry
	// it read, a delete marker included); 0 means the key must have no revision at all (never written, or
	// purged).
	Revision uint64
}

// Write stores every put in bucket atomically, or none. It returns the new revision of each put, in order.
//
// Errors: ErrConflict (a check failed), ErrDisabled, ErrTooLarge, or any other error, whose outcome is unknown
// (a timeout, no responders, no quorum): the batch may have been stored.
func Write(ctx context.Context, nc *nats.Conn, bucket string, puts []Put) ([]uint64, error) {
	switch {
	case len(puts) == 0:
		return nil, nil
	case len(puts) > MaxBatch:
		return nil, fmt.Errorf("write %d keys of %s: %w (at most %d)", len(puts), bucket, ErrTooLarge, MaxBatch)
	}
	id, err := batchID()
	if err != nil {
		return nil, err
	}
	var reply *nats.Msg
	for i, p := range puts {
		m := nats.NewMsg("$KV." + bucket + "." + p.Key)
		m.Data = p.Value
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(p.Revision, 10))
		if i < len(puts)-1 {
			if err := nc.PublishMsg(m); err != nil {
				return nil, fmt.Errorf("write %d keys of %s: %w", len(puts), bucket, err)
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		reply, err = nc.RequestMsgWithContext(ctx, m)
		if err != nil {
			return nil, fmt.Errorf("write %d keys of %s: commit: %w", len(puts), bucket, err)
		}
	}
	var ack struct {
		Stream    string              `json:"stream"`
		Sequence  uint64              `json:"seq"`
		BatchSize uint64              `json:"count"`
		Error     *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &ack); err != nil {
		return nil, fmt.Errorf("write %d keys of %s: decode the reply: %w", len(puts), bucket, err)
	}
	if ack.Error != nil {
		switch ack.Error.ErrorCode {
		case jetstream.JSErrCodeStreamWrongLastSequence, jetstream.JSErrCodeStreamWrongLastSequenceConstant:
			return nil, fmt.Errorf("write %d keys of %s: %w: %w", len(puts), bucket, ErrConflict, ack.Error)
		case 10174: // atomic publish is disabled
			return nil, fmt.Errorf("write %d keys of %s: %w: %w", len(puts), bucket, ErrDisabled, ack.Error)
		}
		return nil, fmt.Errorf("write %d keys of %s: %w", len(puts), bucket, ack.Error)
	}
	if ack.BatchSize != uint64(len(puts)) || ack.Sequence < uint64(len(puts)) {
		return nil, fmt.Errorf("write %d keys of %s: the reply acknowledges %d messages up to sequence %d", len(puts), bucket, ack.BatchSize, ack.Sequence)
	}
	// A batch is stored at consecutive sequences, the commit last.
	revs := make([]uint64, len(puts))
	first := ack.Sequence - uint64(len(puts)) + 1
	for i := range revs {
		revs[i] = first + uint64(i)
	}
	return revs, nil
}

func batchID() (string, error) {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("batch id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// Allow turns on atomic batches on the stream behind a KV bucket (KV_<bucket>), if they are off. Several nodes
// may do it at once: the update is idempotent.
func Allow(ctx context.Context, js jetstream.JetStream, bucket string) error {
	s, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		return fmt.Errorf("allow atomic batches on %s: %w", bucket, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return nil
	}
	cfg.AllowAtomicPublish = true
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("allow atomic batches on %s: %w", bucket, err)
	}
	return nil
}
