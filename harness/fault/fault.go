// Package fault injects chaos into a drill, the way roachprod's failure injection does: a fault
// is one interface with a lifecycle — set up, inject, confirm it took effect, heal, confirm it
// healed, clean up — and a Failer wraps it so that steps run in that order only, every step is
// recorded, and cleanup always runs. The confirmations only observe (the process is gone, a
// query times out, the segment is absent); they never change the cluster.
//
// The kinds: process faults (kill -9, SIGSTOP for a while, a restart), network faults through a
// real TCP fault proxy (package netproxy: latency, bandwidth, resets, a cut, a half-open stall),
// storage faults on the files a restore reads (a WAL segment removed or corrupted, a base backup
// file corrupted or truncated), and faults of the restorer itself. When to inject them, and
// into what, is the drill's business (harness/drill): this package breaks and mends one thing.
package fault

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Fault is one thing that breaks. Its methods are called by a Failer, in lifecycle order.
type Fault interface {
	// Describe says what the fault does to what, for timelines and logs: "kill -9 shard-1".
	Describe() string
	// Setup prepares what Inject needs without breaking anything yet (it finds the file, saves
	// the copy Heal puts back).
	Setup(ctx context.Context) error
	// Inject breaks the target.
	Inject(ctx context.Context) error
	// Confirm observes, without changing anything, that the fault took effect; its error says
	// what was seen instead.
	Confirm(ctx context.Context) error
	// Heal undoes the fault as far as it is the fault's to undo (a killed shard is started
	// again; a sidecar the restore owns is the restore's to restart).
	Heal(ctx context.Context) error
	// ConfirmHealed observes that the target works again.
	ConfirmHealed(ctx context.Context) error
	// Cleanup removes whatever Setup and Inject left (saved copies, proxies' toxics); it is
	// called once, after Heal or instead of it, whatever happened before.
	Cleanup(ctx context.Context) error
}

// State is where a fault is in its lifecycle.
type State string

// The states, in lifecycle order.
const (
	StateNew       State = "new"
	StateSetUp     State = "set-up"
	StateInjected  State = "injected"
	StateConfirmed State = "confirmed"
	StateHealed    State = "healed"
	StateCleanedUp State = "cleaned-up"
)

// The steps of the lifecycle, as they are recorded.
const (
	StepSetup         = "setup"
	StepInject        = "inject"
	StepConfirm       = "confirm"
	StepHeal          = "heal"
	StepConfirmHealed = "confirm-healed"
	StepCleanup       = "cleanup"
)

// ErrTransition refuses a step out of lifecycle order (inject before setup, heal before inject,
// anything after cleanup).
var ErrTransition = errors.New("invalid fault transition")

// Step is one lifecycle step as it happened.
type Step struct {
	Name  string    `json:"name"`
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Error says why the step failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Failer runs one fault's lifecycle: it refuses steps out of order, records every step, and
// remembers whether the fault was confirmed and healed, which is what a judge needs to know.
// Its methods are safe for concurrent use; they run one at a time.
type Failer struct {
	fault Fault
	mu    sync.Mutex
	state State
	steps []Step
	// confirmed and healed are what the confirmations observed.
	confirmed, healed bool
	// problem is the first error of the lifecycle, in words.
	problem string
}

// New wraps f in a Failer, in StateNew.
func New(f Fault) *Failer { return &Failer{fault: f, state: StateNew} }

// Describe says what the fault does.
func (fl *Failer) Describe() string { return fl.fault.Describe() }

// Setup runs the fault's Setup: from StateNew only.
func (fl *Failer) Setup(ctx context.Context) error {
	return fl.run(ctx, StepSetup, []State{StateNew}, StateSetUp, fl.fault.Setup)
}

// Inject runs the fault's Inject: from StateSetUp only.
func (fl *Failer) Inject(ctx context.Context) error {
	return fl.run(ctx, StepInject, []State{StateSetUp}, StateInjected, fl.fault.Inject)
}

// Confirm runs the fault's Confirm: from StateInjected only. A fault that cannot be confirmed
// stays injected, to be healed and cleaned up like any other.
func (fl *Failer) Confirm(ctx context.Context) error {
	err := fl.run(ctx, StepConfirm, []State{StateInjected}, StateConfirmed, fl.fault.Confirm)
	if err == nil {
		fl.mu.Lock()
		fl.confirmed = true
		fl.mu.Unlock()
	}
	return err
}

// Heal runs the fault's Heal and then its ConfirmHealed: from StateInjected or StateConfirmed.
func (fl *Failer) Heal(ctx context.Context) error {
	if err := fl.run(ctx, StepHeal, []State{StateInjected, StateConfirmed}, StateHealed, fl.fault.Heal); err != nil {
		return err
	}
	err := fl.run(ctx, StepConfirmHealed, []State{StateHealed}, StateHealed, fl.fault.ConfirmHealed)
	if err == nil {
		fl.mu.Lock()
		fl.healed = true
		fl.mu.Unlock()
	}
	return err
}

// Cleanup heals a fault still injected, then runs its Cleanup: from any state but
// StateCleanedUp. A fault never set up has nothing to clean up. It is what a drill calls on
// every way out (success, failure, interrupt, panic), so it never refuses to run twice: the
// second call does nothing.
func (fl *Failer) Cleanup(ctx context.Context) error {
	fl.mu.Lock()
	state := fl.state
	fl.mu.Unlock()
	var errs []error
	switch state {
	case StateCleanedUp:
		return nil
	case StateNew:
		fl.mu.Lock()
		fl.state = StateCleanedUp
		fl.mu.Unlock()
		return nil
	case StateInjected, StateConfirmed:
		errs = append(errs, fl.Heal(ctx))
	}
	errs = append(errs, fl.run(ctx, StepCleanup, []State{StateSetUp, StateInjected, StateConfirmed, StateHealed}, StateCleanedUp, fl.fault.Cleanup))
	fl.mu.Lock()
	fl.state = StateCleanedUp // whatever failed, nothing will run again
	fl.mu.Unlock()
	return errors.Join(errs...)
}

// run runs one step from one of the states from, moving to state to when it succeeds.
func (fl *Failer) run(ctx context.Context, name string, from []State, to State, f func(context.Context) error) error {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if !slices.Contains(from, fl.state) {
		return fmt.Errorf("%s %s: %w: it is %s", name, fl.fault.Describe(), ErrTransition, fl.state)
	}
	start := time.Now()
	err := f(ctx)
	st := Step{Name: name, Start: start, End: time.Now()}
	if err != nil {
		err = fmt.Errorf("%s %s: %w", name, fl.fault.Describe(), err)
		st.Error = err.Error()
		if fl.problem == "" {
			fl.problem = err.Error()
		}
	} else {
		fl.state = to
	}
	fl.steps = append(fl.steps, st)
	return err
}

// Record is what became of one fault: what the drill's timeline, its reports and its judge read.
type Record struct {
	Description string `json:"description"`
	State       State  `json:"state"`
	// Confirmed says the fault was observed to take effect; Healed that its target was observed
	// to work again.
	Confirmed bool   `json:"confirmed"`
	Healed    bool   `json:"healed"`
	Steps     []Step `json:"steps"`
	// Problem is the first step's error, in words; empty when every step succeeded.
	Problem string `json:"problem,omitempty"`
}

// Record returns what became of the fault so far.
func (fl *Failer) Record() Record {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return Record{Description: fl.fault.Describe(), State: fl.state, Confirmed: fl.confirmed, Healed: fl.healed,
		Steps: append([]Step(nil), fl.steps...), Problem: fl.problem}
}
