package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/incident"
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
pgdrill's steps and a person can run them by hand. The incident is the one described by
$` + restore.IncidentFileEnv + ` when set (a runbook run by a drill gets it), else the game day's
(` + "`pgdrill incident`" + ` recorded it). Sidecars are this command's own and removed when it ends; the run's
servers are never stopped. The restore's phases go on the game day's timeline.

Exit codes: 0 restored, 1 the restore failed, 2 invalid input, 3 the harness broke.`,
		Example: `  pgdrill restore --strategy pitr-sidecar                 # on a game day, after pgdrill incident
  pgdrill restore --strategy pitr-sidecar -o json         # inside a runbook: reads $PGDRILL_INCIDENT_FILE`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strategy == "" {
				return invalid("--strategy is required: one of %s", strings.Join(fromIncident, ", "))
			}
			s, err := restore.Lookup(strategy)
			if err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			if !slices.Contains(fromIncident, strategy) {
				return invalid("%s needs what only the drill that protected the cluster has (standbys, exports); from an incident, use one of %s",
					strategy, strings.Join(fromIncident, ", "))
			}
			ctx := cmd.Context()
			rec, prot, game, err := a.incidentToRestore(args)
			if err != nil {
				return err
			}
			p, err := a.localProvider(ctx)
			if err != nil {
				return err
			}
			c, err := p.Attach(ctx, rec.RunID)
			if c != nil {
				defer func() {
					if err := c.Destroy(ctx); err != nil {
						a.log.Error("could not remove this restore's sidecars", "err", err)
					}
				}()
			}
			if err != nil {
				return exitcode.With(err, exitcode.HarnessError)
			}
			res, err := s.Restore(ctx, restore.Env{Cluster: c, Protection: prot, Log: a.log}, rec)
			if game != nil {
				if rerr := game.RecordRestore(res); rerr != nil {
					a.log.Warn("could not put the restore on the game day's timeline", "err", rerr)
				}
			}
			if perr := a.print(res, func(w io.Writer) { printRestore(w, res) }); perr != nil {
				return perr
			}
			return exitcode.With(err, exitcode.ObjectivesMissed)
		},
	}
	cmd.Flags().StringVar(&strategy, "strategy", "", "restore strategy: "+strings.Join(fromIncident, ", "))
	return cmd
}

// incidentToRestore finds the incident to restore: the runbook's incident file, else the game
// day's record.
func (a *app) incidentToRestore(args []string) (incident.Record, backup.Protection, *drill.GameDay, error) {
	if path := a.env(restore.IncidentFileEnv); path != "" && len(args) == 0 {
		f, err := restore.ReadIncidentFile(path)
		if err != nil {
			return incident.Record{}, backup.Protection{}, nil, exitcode.With(err, exitcode.InvalidInput)
		}
		return f.Record(), f.Protection(), nil, nil
	}
	dir, err := a.findGameDay(args)
	if err != nil {
		return incident.Record{}, backup.Protection{}, nil, err
	}
	g, err := drill.LoadGameDay(dir, cluster.Remote, a.log)
	if err != nil {
		return incident.Record{}, backup.Protection{}, nil, exitcode.With(err, exitcode.HarnessError)
	}
	if g.Incident() == nil {
		return incident.Record{}, backup.Protection{}, nil, invalid("the game day has no incident yet: run `pgdrill incident` first")
	}
	return *g.Incident(), g.Protection(), g, nil
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
