package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// downResult is what `pgdrill down` did.
type downResult struct {
	Removed []string `json:"removed"`
	// Skipped are runs whose pgdrill process still runs them; stop that process instead.
	Skipped []string `json:"skipped,omitempty"`
}

func (a *app) downCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down [RUN_ID...]",
		Short: "Tear down clusters left running (detached, or left by a killed pgdrill)",
		Long: `Stop the servers of the named runs (or of every recorded run with --all) and remove their
directories and records. Only processes whose pid, start time and data directory match the run's
record are signalled; only directories marked with the run's id are removed. Runs still owned by
a live ` + "`pgdrill up`" + ` (not detached) are skipped: stop that process instead.`,
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
				if !rec.Detached && rec.Owner.Alive() {
					res.Skipped = append(res.Skipped, rec.RunID)
					continue
				}
				if err := local.Reap(cmd.Context(), store, rec); err != nil {
					errs = append(errs, err)
					continue
				}
				res.Removed = append(res.Removed, rec.RunID)
			}
			if err := a.print(res, func(w io.Writer) { printDown(w, res) }); err != nil {
				return err
			}
			if len(res.Skipped) > 0 && !all {
				errs = append(errs, exitcode.With(fmt.Errorf("runs %v are still run by a live pgdrill up; stop it with Ctrl-C", res.Skipped), exitcode.InvalidInput))
			}
			return exitcode.With(errors.Join(errs...), exitcode.HarnessError)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "tear down every recorded run that no live pgdrill owns")
	return cmd
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
	if len(res.Removed) == 0 && len(res.Skipped) == 0 {
		fmt.Fprintln(w, "nothing to tear down")
	}
	for _, id := range res.Removed {
		fmt.Fprintf(w, "removed %s\n", id)
	}
	for _, id := range res.Skipped {
		fmt.Fprintf(w, "skipped %s: its pgdrill up is still running\n", id)
	}
}
