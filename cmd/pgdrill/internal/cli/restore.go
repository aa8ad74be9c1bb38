package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/scenarios"
)

// fromIncident lists the strategies that can work from an incident's facts alone: backups, WAL
// archives and the live shards.
func fromIncident() string {
	return strings.Join(scenarios.StrategiesWhere(func(s scenarios.StrategyInfo) bool { return s.FromIncidentFile }), ", ")
}

// restorable lists the strategies `pgdrill restore` runs.
func restorable() string {
	return strings.Join(scenarios.StrategiesWhere(func(s scenarios.StrategyInfo) bool { return s.GameDay || s.FromIncidentFile }), ", ")
}

func (a *app) restoreCommand() *cobra.Command {
	var strategy string
	cmd := &cobra.Command{
		Use:   "restore --strategy NAME [RUN_ID]",
		Short: "Run one built-in restore strategy against an incident: from a runbook, or by hand on a game day",
		Long: `Bring the affected tenants of an incident back with a built-in strategy, so that a runbook can call
pgdrill's steps and a person can run them by hand.

Inside a runbook (a drill sets $` + drill.IncidentFileEnv + `), the incident is the one that file describes, and
the strategy must work from it alone: one of ` + fromIncident() + `. Its sidecars are this
command's own and removed when it ends; the run's servers are never stopped. It journals how
far it got in $` + drill.JournalEnv + ` (a drill sets it): run again after a crash, it restores
only what the crashed run left, each tenant once.

On a game day, the game day's ` + "`pgdrill up --scenario`" + ` runs the strategy itself, with every standby and
export its protection made, and puts its phases on the game day's timeline.

Exit codes: 0 restored, 1 the restore failed, 2 invalid input, 3 the harness broke.`,
		Example: `  pgdrill restore --strategy pitr-sidecar                 # on a game day, after pgdrill incident
  pgdrill restore --strategy delayed-standby r1a2b3c4d    # a game day whose scenario keeps standbys
  pgdrill restore --strategy pitr-sidecar -o json         # inside a runbook: reads $PGDRILL_INCIDENT_FILE`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strategy == "" {
				return invalid("--strategy is required: one of %s", restorable())
			}
			if _, err := scenarios.LookupStrategy(strategy); err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			ctx := cmd.Context()
			var res drill.RestoreResult
			var err error
			if path := a.env(drill.IncidentFileEnv); path != "" && len(args) == 0 {
				res, err = a.host.RestoreFromIncidentFile(ctx, strategy, path, a.env(drill.JournalEnv))
			} else {
				var c *drill.GameDayClient
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
	cmd.Flags().StringVar(&strategy, "strategy", "", "restore strategy: "+restorable())
	return cmd
}

func printRestore(w io.Writer, res drill.RestoreResult) {
	earlier := 0
	for _, t := range res.Tenants {
		if t.Earlier {
			earlier++
		}
	}
	fmt.Fprintf(w, "%s restored %d tenant(s), %d row(s) written", res.Strategy, len(res.Tenants), res.Rows())
	if earlier > 0 {
		fmt.Fprintf(w, " (%d of them by an earlier run that was killed, as its journal says)", earlier)
	}
	fmt.Fprintln(w)
	for _, p := range res.Phases {
		fmt.Fprintf(w, "  %-10s shard %-3d %s\n", p.Name, p.Shard, p.Duration().Round(time.Millisecond))
	}
	for _, t := range res.Tenants {
		if t.Conflicts+t.Newer > 0 {
			fmt.Fprintf(w, "  tenant %d: %d conflicting row(s), %d newer row(s) kept\n", t.ID, t.Conflicts, t.Newer)
		}
	}
}
