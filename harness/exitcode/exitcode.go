// Package exitcode attaches a process exit code to an error once, where the failure is
// understood, so that the CLI can tell "the drill missed its objectives" apart from "the harness
// broke" and "the input was invalid" without guessing from error text.
package exitcode

import "errors"

// Code is a pgdrill process exit code. The values are a public contract: CI jobs branch on them.
type Code int

// The exit codes, documented in `pgdrill --help`.
const (
	// OK: the command did what was asked; a drill passed (possibly with conditions).
	OK Code = 0
	// ObjectivesMissed: the drill ran to the end and failed its objectives (verdict FAIL).
	ObjectivesMissed Code = 1
	// InvalidInput: bad flags, scenario or objective; nothing was started or changed.
	InvalidInput Code = 2
	// HarnessError: pgdrill itself or its environment broke (verdict ERROR); the drill says
	// nothing about the restore path.
	HarnessError Code = 3
	// Aborted: interrupted by a signal or a timeout (verdict ABORTED); everything was torn down.
	Aborted Code = 4
	// Inconclusive: the drill ran but could not decide (verdict INCONCLUSIVE).
	Inconclusive Code = 5
)

// Help is the exit-code table printed in --help.
const Help = `Exit codes:
  0  success; a drill passed (PASS or PASS_WITH_CONDITIONS)
  1  the drill ran and missed its objectives (FAIL)
  2  invalid input: flags, scenario or objective; nothing was changed
  3  the harness or its environment broke (ERROR); says nothing about the restore
  4  aborted by a signal or timeout (ABORTED); everything was torn down
  5  the drill could not decide (INCONCLUSIVE)`

type codedError struct {
	err  error
	code Code
}

func (e *codedError) Error() string { return e.err.Error() }
func (e *codedError) Unwrap() error { return e.err }

// With attaches code to err unless err already carries one (the innermost decision wins, as it
// was made where the failure was understood). A nil err stays nil.
func With(err error, code Code) error {
	if err == nil {
		return nil
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return err
	}
	return &codedError{err: err, code: code}
}

// Of returns the code attached to err: OK for nil, HarnessError for an error nobody classified
// (an unexpected failure is the harness's fault until shown otherwise, never a drill verdict).
func Of(err error) Code {
	if err == nil {
		return OK
	}
	var ce *codedError
	if errors.As(err, &ce) {
		return ce.code
	}
	return HarnessError
}
