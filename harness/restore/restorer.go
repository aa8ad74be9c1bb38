package restore

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"

	"github.com/pgdrill/pgdrill/harness/reaper"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// Restorer is a runbook's process while it runs, as a drill's faults see it (PhaseStart): what
// a restorer-crash fault kills, as the crash of the responder's machine would, and then lets run
// again, as the responder would once back. The runbook strategy runs its command again only
// after a crash the drill caused: a runbook that fails on its own has failed.
type Restorer struct {
	mu sync.Mutex
	// cmd is the running attempt's command; nil between attempts.
	cmd *exec.Cmd
	// attempt counts the attempts begun, from 1.
	attempt int
	// merged counts the tenants the running attempt journaled back.
	merged int
	// crashed is the attempt Crash killed; 0 for none.
	crashed int
	// exited is closed when the running attempt's command has been waited for.
	exited chan struct{}
	// rerun is closed by Rerun.
	rerun chan struct{}
}

func newRestorer() *Restorer { return &Restorer{rerun: make(chan struct{})} }

// begin notes that an attempt's command started.
func (p *Restorer) begin(cmd *exec.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd, p.merged, p.exited = cmd, 0, make(chan struct{})
	p.attempt++
}

// end notes that the running attempt's command has been waited for, and reports whether Crash
// killed it.
func (p *Restorer) end() (crashed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd = nil
	close(p.exited)
	return p.crashed == p.attempt
}

// tenantBack counts a tenant the running attempt journaled back.
func (p *Restorer) tenantBack() {
	p.mu.Lock()
	p.merged++
	p.mu.Unlock()
}

// Merged returns how many tenants the running attempt has restored, as its journal says (a
// runbook that calls `pgdrill restore` keeps one); 0 between attempts.
func (p *Restorer) Merged() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0
	}
	return p.merged
}

// Attempt returns the number of the attempt that runs or ran last, from 1.
func (p *Restorer) Attempt() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.attempt
}

// Running reports whether an attempt's command runs.
func (p *Restorer) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Crash kills the running attempt's command and everything it started, at once (reaper.Crash),
// and returns the processes it killed, for the caller to watch them go; Exited is closed once
// the command has been waited for.
func (p *Restorer) Crash() ([]runstate.Process, <-chan struct{}, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil, nil, errors.New("crash the runbook: it is not running")
	}
	procs := reaper.Below(p.cmd)
	if err := reaper.Crash(p.cmd); err != nil {
		return nil, nil, fmt.Errorf("crash the runbook: %w", err)
	}
	p.crashed = p.attempt
	return procs, p.exited, nil
}

// Rerun lets the runbook run again after a crash. Calling it again does nothing.
func (p *Restorer) Rerun() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.rerun:
	default:
		close(p.rerun)
	}
}

// awaitRerun waits for Rerun, or for ctx to end; each rerun needs one Rerun.
func (p *Restorer) awaitRerun(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return fmt.Errorf("wait to run the crashed runbook again: %w", ctx.Err())
	case <-p.rerun:
	}
	p.mu.Lock()
	p.rerun = make(chan struct{})
	p.mu.Unlock()
	return nil
}
