// Package cli holds what the project's tools share around their own logic: the signals that stop them, flag
// parsing mistakes as usage errors, exit codes and the command line a report records. It owns no goroutines.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
)

// UsageError is a mistake on the command line.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef is a UsageError.
func Usagef(format string, args ...any) error { return &UsageError{fmt.Sprintf(format, args...)} }

// Main runs a tool and exits with its outcome: run gets the arguments and a context that ends at the first SIGINT
// or SIGTERM (a tool stops its processes in order then; a second signal is the tool's to handle). An error is
// printed as "<name>: <error>", a usage error followed by hint, and the exit code is 2 after a usage error, 1
// after any other, 0 without.
func Main(name, hint string, run func(ctx context.Context, args []string, stdout io.Writer) error) {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	os.Exit(report(os.Stderr, name, hint, err))
}

// report prints err and returns the exit code.
func report(stderr io.Writer, name, hint string, err error) int {
	var ue *UsageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v%s\n", name, err, hint)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	return 0
}

// Parse parses args into fs: it returns flag.ErrHelp as it is (the usage is printed; a tool exits 0 then), and any
// other mistake, a positional argument too, as a UsageError.
func Parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return Usagef("%s", err.Error())
	}
	if fs.NArg() > 0 {
		return Usagef("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

// CommandLine renders how a tool of cmd/ was invoked, `go run ./cmd/<name>` and args quoted where a shell would
// need it, for the reports that record it.
func CommandLine(name string, args []string) string {
	parts := []string{"go run ./cmd/" + name}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t'\"$`\\") {
			a = strconv.Quote(a)
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}
