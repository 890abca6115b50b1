package chaos

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func casOp(client int, expect, seq uint64, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: expect, Output: linOutput{seq: seq}, Call: call, Return: ret}
}

func TestLeaseModel(t *testing.T) {
	for _, c := range []struct {
		name    string
		history []porcupine.Operation
		want    porcupine.CheckResult
	}{
		{"a chain of writes", []porcupine.Operation{
			casOp(0, 0, 1, 0, 10),
			casOp(1, 1, 2, 20, 30),
			casOp(2, 2, 5, 25, 1<<62), // landed although its client saw no answer: may take effect late
			casOp(0, 5, 6, 40, 50),
		}, porcupine.Ok},
		// Two writes expecting sequence 1 both landed: two lease holders for one revision.
		{"a fork", []porcupine.Operation{
			casOp(0, 0, 1, 0, 10),
			casOp(1, 1, 2, 20, 30),
			casOp(2, 1, 3, 21, 31),
		}, porcupine.Illegal},
		// The write at sequence 2 returned before the one at sequence 1 was called, yet it expected sequence 1.
		{"a write before its predecessor", []porcupine.Operation{
			casOp(0, 1, 2, 0, 10),
			casOp(1, 0, 1, 20, 30),
		}, porcupine.Illegal},
	} {
		if r := porcupine.CheckOperationsTimeout(linModel, c.history, 10*time.Second); r != c.want {
			t.Errorf("%s judged %v, want %v", c.name, r, c.want)
		}
	}
}
