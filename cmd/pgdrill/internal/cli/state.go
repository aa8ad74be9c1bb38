// Package cli is pgdrill's command line. It reaches the operating system only through State, so
// commands can be run in-process by tests; only main touches os.Exit.
package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"
)

// State is everything the CLI takes from the process: arguments, streams, environment, and the
// signals that cancel a run.
type State struct {
	Args   []string
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// StderrIsTerminal enables progress bars.
	StderrIsTerminal bool
	// Context returns the run's context, cancelled on SIGINT or SIGTERM, and a stop function.
	Context func() (context.Context, context.CancelFunc)
}

// OSState is the State of the real process.
func OSState() State {
	return State{
		Args:             os.Args[1:],
		Stdout:           os.Stdout,
		Stderr:           os.Stderr,
		Getenv:           os.Getenv,
		StderrIsTerminal: term.IsTerminal(int(os.Stderr.Fd())),
		Context: func() (context.Context, context.CancelFunc) {
			return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		},
	}
}
