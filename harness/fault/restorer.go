package fault

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/runstate"
)

// Restorer is the process restoring an incident that a RestorerCrash kills: a drill's runbook
// (restore.Restorer).
type Restorer interface {
	// Merged is how many tenants its running attempt has restored; 0 between attempts.
	Merged() int
	// Running reports whether an attempt runs.
	Running() bool
	// Attempt numbers the attempt that runs or ran last, from 1.
	Attempt() int
	// Crash kills the running attempt and everything it started at once, returning the
	// processes killed and a channel closed once the attempt has been waited for.
	Crash() ([]runstate.Process, <-chan struct{}, error)
	// Rerun lets the crashed restorer run again.
	Rerun()
}

// restorerPoll is how often a RestorerCrash looks at its restorer's progress.
const restorerPoll = 10 * time.Millisecond

// RestorerCrash kills the restorer itself halfway — the runbook and whatever it runs (`pgdrill
// restore`, its sidecar, psql), all at once with SIGKILL, as the crash of the responder's laptop
// would — at once, or once it has restored Tenants tenants; healing lets it run again, as the
// responder does once back. The rerun must finish what the crashed run left without restoring anything
// twice: what the drill's verification then checks.
type RestorerCrash struct {
	Restorer Restorer
	// Tenants is how many tenants the restorer must have restored before the crash, as the
	// journal of its `pgdrill restore` says; 0 crashes it at once.
	Tenants int
	procs   []runstate.Process
	exited  <-chan struct{}
	attempt int
}

// Describe implements Fault.
func (c *RestorerCrash) Describe() string {
	if c.Tenants == 0 {
		return "crash the runbook (kill -9 of all it runs)"
	}
	return fmt.Sprintf("crash the runbook (kill -9 of all it runs) after %d tenant(s)", c.Tenants)
}

// Setup implements Fault.
func (c *RestorerCrash) Setup(context.Context) error { return nil }

// Inject implements Fault: it waits until the restorer runs and has restored enough tenants,
// then crashes it. A restorer that ends first was never crashed: the fault did not take effect.
func (c *RestorerCrash) Inject(ctx context.Context) error {
	t := time.NewTicker(restorerPoll)
	defer t.Stop()
	for {
		running := c.Restorer.Running()
		if running && c.Restorer.Merged() >= c.Tenants {
			break
		}
		if !running && c.Restorer.Attempt() > 0 {
			return fmt.Errorf("the runbook ended before it restored %d tenant(s)", c.Tenants)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the runbook to restore %d tenant(s): %w", c.Tenants, ctx.Err())
		case <-t.C:
		}
	}
	c.attempt = c.Restorer.Attempt()
	var err error
	c.procs, c.exited, err = c.Restorer.Crash()
	return err
}

// Confirm implements Fault: the runbook's command exited, and every process it ran when it was
// crashed is gone.
func (c *RestorerCrash) Confirm(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("wait for the crashed runbook to exit: %w", ctx.Err())
	case <-c.exited:
	}
	var left []string
	for _, p := range c.procs {
		if p.Alive() {
			args, _ := runstate.CommandLine(p.PID)
			left = append(left, strconv.Itoa(p.PID)+" "+strings.Join(args, " "))
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("the runbook's processes survived the crash: %s", strings.Join(left, "; "))
	}
	return nil
}

// Heal implements Fault: the restorer may run again.
func (c *RestorerCrash) Heal(context.Context) error {
	c.Restorer.Rerun()
	return nil
}

// ConfirmHealed implements Fault: the restorer runs again.
func (c *RestorerCrash) ConfirmHealed(ctx context.Context) error {
	t := time.NewTicker(restorerPoll)
	defer t.Stop()
	for c.Restorer.Attempt() == c.attempt {
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the runbook to run again: %w", ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Cleanup implements Fault: the reaper reaped everything the crash left; nothing is the fault's.
func (c *RestorerCrash) Cleanup(context.Context) error { return nil }
