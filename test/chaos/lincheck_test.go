package chaos

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func casOp(client int, expect, seq uint64, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: expect, Output: linOutput{seq: seq}, Call: call, Return: ret}
}

func TestLeaseModelAcceptsAChainOfWrites(t *testing.T) {
	h := []porcupine.Operation{
		casOp(0, 0, 1, 0, 10),
		casOp(1, 1, 2, 20, 30),
		casOp(2, 2, 5, 25, 1<<62), // landed although its client saw no answer: may take effect late
		casOp(0, 5, 6, 40, 50),
	}
	if r := porcupine.CheckOperationsTimeout(linModel, h, 10*time.Second); r != porcupine.Ok {
		t.Fatalf("a chain of writes judged %v", r)
	}
}

func TestLeaseModelRejectsAFork(t *testing.T) {
	// Two writes expecting sequence 1 both landed: two lease holders for one revision.
	h := []porcupine.Operation{
		casOp(0, 0, 1, 0, 10),
		casOp(1, 1, 2, 20, 30),
		casOp(2, 1, 3, 21, 31),
	}
	if r := porcupine.CheckOperationsTimeout(linModel, h, 10*time.Second); r != porcupine.Illegal {
		t.Fatalf("a fork judged %v", r)
	}
}

func TestLeaseModelRejectsAWriteOrderedAgainstRealTime(t *testing.T) {
	// The write at sequence 2 returned before the one at sequence 1 was called, yet it expected sequence 1.
	h := []porcupine.Operation{
		casOp(0, 1, 2, 0, 10),
		casOp(1, 0, 1, 20, 30),
	}
	if r := porcupine.CheckOperationsTimeout(linModel, h, 10*time.Second); r != porcupine.Illegal {
		t.Fatalf("a write before its predecessor judged %v", r)
	}
}
