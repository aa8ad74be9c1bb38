package drill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster/container"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// RunListing is one recorded run, as `pgdrill ls` shows it.
type RunListing struct {
	RunID    string    `json:"run_id"`
	Provider string    `json:"provider"`
	Created  time.Time `json:"created"`
	Servers  int       `json:"servers"`
	// State is "running" (its pgdrill up is alive), "detached", or "orphaned" (left by a killed
	// pgdrill; the next pgdrill start or `pgdrill down` reaps it).
	State string `json:"state"`
}

// Runs lists the runs recorded as live: in the state dir, and under the work root whatever
// state dir recorded them (a test suite's, another --state-dir's).
func (h *Host) Runs() ([]RunListing, error) {
	recs, _, err := h.runs()
	if err != nil {
		return nil, err
	}
	out := make([]RunListing, 0, len(recs))
	for _, r := range recs {
		state := "running"
		switch {
		case r.Detached:
			state = "detached"
		case r.Orphaned():
			state = "orphaned"
		}
		out = append(out, RunListing{RunID: r.RunID, Provider: r.Provider, Created: r.Created, Servers: len(r.Servers), State: state})
	}
	return out, nil
}

// DownResult is what Down did.
type DownResult struct {
	Removed []string `json:"removed"`
	// Stopped are runs whose own `pgdrill up` was asked to tear them down (a game day, or an up
	// in another terminal), and did.
	Stopped []string `json:"stopped,omitempty"`
	// Skipped are runs with all whose `pgdrill up` still runs them; name them to stop them.
	Skipped []string `json:"skipped,omitempty"`
}

// ownerStopTimeout bounds the wait for a `pgdrill up` to tear its cluster down when asked.
const ownerStopTimeout = 2 * time.Minute

// Down tears down the named runs, or with all every recorded run no live pgdrill owns. A run
// whose own `pgdrill up` is alive is asked to tear down (SIGTERM) when named, and skipped by
// all; any other is reaped here: only processes whose pid, start time and data directory match
// its record are signalled, and only directories marked with its id are removed. It needs no
// Postgres binaries.
func (h *Host) Down(ctx context.Context, ids []string, all bool) (DownResult, error) {
	var res DownResult
	if all == (len(ids) > 0) {
		return res, exitcode.With(errors.New("name the runs to tear down, or pass --all (see `pgdrill ls`)"), exitcode.InvalidInput)
	}
	known, store, err := h.runs()
	if err != nil {
		return res, err
	}
	recs, err := selectRuns(known, ids, store.Dir())
	if err != nil {
		return res, err
	}
	gameDays := gameDaysIn(store)
	var errs []error
	for _, rec := range recs {
		switch {
		case !rec.Detached && rec.Owner.Alive() && all:
			res.Skipped = append(res.Skipped, rec.RunID)
			continue // its game day files are still in use
		case !rec.Detached && rec.Owner.Alive():
			if err := stopOwner(ctx, store, rec); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Stopped = append(res.Stopped, rec.RunID)
		default:
			if err := reap(ctx, store, rec); err != nil {
				errs = append(errs, err)
				continue
			}
			res.Removed = append(res.Removed, rec.RunID)
		}
		if err := os.RemoveAll(filepath.Join(gameDays, rec.RunID)); err != nil { // a game day's files, if any
			h.log.Warn("could not remove the game day's files", "run_id", rec.RunID, "err", err)
		}
	}
	return res, exitcode.With(errors.Join(errs...), exitcode.HarnessError)
}

// reap removes what a run's record names, by the provider that made it.
func reap(ctx context.Context, store *runstate.Store, rec runstate.Record) error {
	if rec.Provider == ProviderContainer {
		return container.Reap(ctx, store, rec)
	}
	return local.Reap(ctx, store, rec)
}

// stopOwner asks the `pgdrill up` that owns a run to tear it down, and waits until it has: until
// the run's record is gone, or the process (which ends once it tore down) is.
func stopOwner(ctx context.Context, store *runstate.Store, rec runstate.Record) error {
	if !rec.Owner.Alive() {
		return fmt.Errorf("signal pgdrill %d: it is not running", rec.Owner.PID)
	}
	// Only that very process (pid and start time, checked just above), never another.
	if err := syscall.Kill(rec.Owner.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signal pgdrill %d: %w", rec.Owner.PID, err)
	}
	deadline := time.Now().Add(ownerStopTimeout)
	for {
		if _, err := store.Load(rec.RunID); errors.Is(err, runstate.ErrUnknownRun) && !rec.Owner.Alive() {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stop run %s: its pgdrill up (pid %d) did not tear down within %s", rec.RunID, rec.Owner.PID, ownerStopTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// runs returns every run the host knows of: recorded in its state dir, or found under its work
// root whatever state dir recorded it.
func (h *Host) runs() ([]runstate.Record, *runstate.Store, error) {
	store, err := h.store()
	if err != nil {
		return nil, nil, err
	}
	recs, err := local.FindRuns(h.workRoot(), store)
	if err != nil {
		return nil, nil, exitcode.With(err, exitcode.HarnessError)
	}
	return recs, store, nil
}

// selectRuns returns the records of the named runs, or all of recs when none is named.
func selectRuns(recs []runstate.Record, ids []string, stateDir string) ([]runstate.Record, error) {
	if len(ids) == 0 {
		return recs, nil
	}
	var out []runstate.Record
	for _, id := range ids {
		i := slices.IndexFunc(recs, func(r runstate.Record) bool { return r.RunID == id })
		if i < 0 {
			return nil, exitcode.With(fmt.Errorf("no recorded run %q in %s or under the work root (see `pgdrill ls`)", id, stateDir), exitcode.InvalidInput)
		}
		out = append(out, recs[i])
	}
	return out, nil
}
