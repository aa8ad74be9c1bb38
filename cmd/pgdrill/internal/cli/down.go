package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// downResult is what `pgdrill down` did.
type downResult struct {
	Removed []string `json:"removed"`
	// Stopped are runs whose own `pgdrill up` was asked to tear them down (a game day, or an up
	// in another terminal), and did.
	Stopped []string `json:"stopped,omitempty"`
	// Skipped are runs with --all whose `pgdrill up` still runs them; name them to stop them.
	Skipped []string `json:"skipped,omitempty"`
}

// ownerStopTimeout bounds the wait for a `pgdrill up` to tear its cluster down when asked.
const ownerStopTimeout = 2 * time.Minute

func (a *app) downCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down [RUN_ID...]",
		Short: "Tear down clusters left running (detached, or left by a killed pgdrill)",
		Long: `Stop the servers of the named runs (or of every recorded run with --all) and remove their
directories and records. Only processes whose pid, start time and data directory match the run's
record are signalled; only directories marked with the run's id are removed. Runs still owned by
a live ` + "`pgdrill up`" + ` (not detached, a game day say) are stopped by asking that process to tear
down (SIGTERM) when named, and skipped by --all.`,
		Example: `  pgdrill down r1a2b3c4d
  pgdrill down --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return invalid("name the runs to tear down, or pass --all (see `pgdrill ls`)")
			}
			store, err := a.store()
			if err != nil {
				return err
			}
			recs, err := selectRuns(store, args)
			if err != nil {
				return err
			}
			var res downResult
			var errs []error
			for _, rec := range recs {
				switch {
				case !rec.Detached && rec.Owner.Alive() && all:
					res.Skipped = append(res.Skipped, rec.RunID)
					continue // its game day files are still in use
				case !rec.Detached && rec.Owner.Alive():
					if err := stopOwner(cmd.Context(), store, rec); err != nil {
						errs = append(errs, err)
						continue
					}
					res.Stopped = append(res.Stopped, rec.RunID)
				default:
					if err := local.Reap(cmd.Context(), store, rec); err != nil {
						errs = append(errs, err)
						continue
					}
					res.Removed = append(res.Removed, rec.RunID)
				}
				if dir, err := a.gameDaysDir(); err == nil {
					if err := os.RemoveAll(filepath.Join(dir, rec.RunID)); err != nil { // a game day's files, if any
						a.log.Warn("could not remove the game day's files", "run_id", rec.RunID, "err", err)
					}
				}
			}
			if err := a.print(res, func(w io.Writer) { printDown(w, res) }); err != nil {
				return err
			}
			return exitcode.With(errors.Join(errs...), exitcode.HarnessError)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "tear down every recorded run that no live pgdrill owns")
	return cmd
}

// stopOwner asks the `pgdrill up` that owns a run to tear it down, and waits until it has.
func stopOwner(ctx context.Context, store *runstate.Store, rec runstate.Record) error {
	if err := signalOwner(rec.Owner, syscall.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(ownerStopTimeout)
	for {
		if _, err := store.Load(rec.RunID); errors.Is(err, runstate.ErrUnknownRun) {
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

// signalOwner signals the pgdrill process that owns a run: only that very process (pid and start
// time), never another.
func signalOwner(owner runstate.Process, sig syscall.Signal) error {
	if !owner.Alive() {
		return fmt.Errorf("signal pgdrill %d: it is not running", owner.PID)
	}
	if err := syscall.Kill(owner.PID, sig); err != nil {
		return fmt.Errorf("signal pgdrill %d: %w", owner.PID, err)
	}
	return nil
}

// selectRuns returns the records of the named runs, or all records when none is named.
func selectRuns(store *runstate.Store, ids []string) ([]runstate.Record, error) {
	recs, err := store.List()
	if err != nil {
		return nil, exitcode.With(err, exitcode.HarnessError)
	}
	if len(ids) == 0 {
		return recs, nil
	}
	var out []runstate.Record
	for _, id := range ids {
		i := slices.IndexFunc(recs, func(r runstate.Record) bool { return r.RunID == id })
		if i < 0 {
			return nil, invalid("no recorded run %q in %s (see `pgdrill ls`)", id, store.Dir())
		}
		out = append(out, recs[i])
	}
	return out, nil
}

func printDown(w io.Writer, res downResult) {
	if len(res.Removed)+len(res.Stopped)+len(res.Skipped) == 0 {
		fmt.Fprintln(w, "nothing to tear down")
	}
	for _, id := range res.Removed {
		fmt.Fprintf(w, "removed %s\n", id)
	}
	for _, id := range res.Stopped {
		fmt.Fprintf(w, "stopped %s: its pgdrill up tore it down\n", id)
	}
	for _, id := range res.Skipped {
		fmt.Fprintf(w, "skipped %s: its pgdrill up is still running (name it to stop it)\n", id)
	}
}
