package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/gameday"
	"github.com/pgdrill/pgdrill/harness/restore"
)

// fromIncident are the strategies that can work from an incident's facts alone: backups, WAL
// archives and the live shards.
var fromIncident = []string{"pitr-sidecar", "pgbackrest-sidecar", "soft-delete-undo"}

func (a *app) restoreCommand() *cobra.Command {
	var strategy string
	cmd := &cobra.Command{
		Use:   "restore --strategy NAME [RUN_ID]",
		Short: "Run one built-in restore strategy against an incident: from a runbook, or by hand on a game day",
		Long: `Bring the affected tenants of an incident back with a built-in strategy, so that a runbook can call
pgdrill's steps and a person can run them by hand.

Inside a runbook (a drill sets $` + restore.IncidentFileEnv + `), the incident is the one that file describes, and
the strategy must work from it alone: one of ` + strings.Join(fromIncident, ", ") + `. Its sidecars are this
command's own and removed when it ends; the run's servers are never stopped.

On a game day, the game day's ` + "`pgdrill up --scenario`" + ` runs the strategy itself, with every standby and
export its protection made, and puts its phases on the game day's timeline.

Exit codes: 0 restored, 1 the restore failed, 2 invalid input, 3 the harness broke.`,
		Example: `  pgdrill restore --strategy pitr-sidecar                 # on a game day, after pgdrill incident
  pgdrill restore --strategy delayed-standby r1a2b3c4d    # a game day whose scenario keeps standbys
  pgdrill restore --strategy pitr-sidecar -o json         # inside a runbook: reads $PGDRILL_INCIDENT_FILE`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strategy == "" {
				return invalid("--strategy is required: one of %s", strings.Join(restore.Names(), ", "))
			}
			if _, err := restore.Lookup(strategy); err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			ctx := cmd.Context()
			var res restore.Result
			var err error
			if path := a.env(restore.IncidentFileEnv); path != "" && len(args) == 0 {
				res, err = a.restoreFromFile(ctx, strategy, path)
			} else {
				var c *gameday.Client
				if c, err = a.dialGameDay(args); err != nil {
					return err
				}
				res, err = c.Restore(ctx, strategy)
			}
			if exitcode.Of(err) == exitcode.InvalidInput {
				return err
			}
			if perr := a.print(res, func(w io.Writer) { printRestore(w, res) }); perr != nil {
				return perr
			}
			return exitcode.With(err, exitcode.ObjectivesMissed)
		},
	}
	cmd.Flags().StringVar(&strategy, "strategy", "", "restore strategy: "+strings.Join(restore.Names(), ", "))
	return cmd
}

// restoreFromFile runs a strategy against the incident an incident file describes, attached to
// its run from this process.
func (a *app) restoreFromFile(ctx context.Context, strategy, path string) (restore.Result, error) {
	if !slices.Contains(fromIncident, strategy) {
		return restore.Result{}, invalid("%s needs what only the drill that protected the cluster has (standbys, exports); from an incident file, use one of %s",
			strategy, strings.Join(fromIncident, ", "))
	}
	s, _ := restore.Lookup(strategy)
	f, err := restore.ReadIncidentFile(path)
	if err != nil {
		return restore.Result{}, exitcode.With(err, exitcode.InvalidInput)
	}
	p, err := a.localProvider(ctx)
	if err != nil {
		return restore.Result{}, err
	}
	c, err := p.Attach(ctx, f.RunID)
	if c != nil {
		defer func() {
			if err := c.Destroy(ctx); err != nil {
				a.log.Error("could not remove this restore's sidecars", "err", err)
			}
		}()
	}
	if err != nil {
		return restore.Result{}, exitcode.With(err, exitcode.HarnessError)
	}
	return s.Restore(ctx, restore.Env{Cluster: c, Protection: f.Protection(), Log: a.log}, f.Record())
}

func printRestore(w io.Writer, res restore.Result) {
	fmt.Fprintf(w, "%s restored %d tenant(s), %d row(s) written\n", res.Strategy, len(res.Tenants), res.Rows())
	for _, p := range res.Phases {
		fmt.Fprintf(w, "  %-10s shard %-3d %s\n", p.Name, p.Shard, p.Duration().Round(time.Millisecond))
	}
	for _, t := range res.Tenants {
		if t.Conflicts+t.Newer > 0 {
			fmt.Fprintf(w, "  tenant %d: %d conflicting row(s), %d newer row(s) kept\n", t.ID, t.Conflicts, t.Newer)
		}
	}
}
