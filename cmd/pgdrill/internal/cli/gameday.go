package cli

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

// gameDay runs `pgdrill up --scenario`: prepares the drill, keeps its workload running and serves
// the team's commands (incident, restore, score) on the game day's control socket, until Ctrl-C or
// SIGTERM (which `pgdrill down` sends) tears everything down.
func (a *app) gameDay(ctx context.Context, sc *scenarios.Scenario, seed uint64) error {
	p, err := a.host.ScenarioProvider(ctx, sc)
	if err != nil {
		return err
	}
	g, err := drill.StartGameDay(ctx, drill.Config{Scenario: sc, Provider: p, Seed: seed, Log: a.log})
	defer g.Teardown(ctx)
	if err != nil {
		return exitcode.With(err, exitcode.HarnessError)
	}
	var perr error
	err = a.host.ServeGameDay(ctx, g, func() {
		out := g.Info()
		perr = a.print(out, func(w io.Writer) {
			printDescription(w, out, false)
			fmt.Fprintf(w, "game day %q is ready: the workload is writing to every tenant.\n", sc.Metadata.ID)
			fmt.Fprintf(w, "next: pgdrill incident %s   (then restore, then: pgdrill score %s)\n", out.RunID, out.RunID)
		})
	})
	return cmp.Or(perr, err)
}

func (a *app) incidentCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "incident [RUN_ID]",
		Short: "Game day: break the cluster the way the scenario says, and page the team",
		Long: `Ask the game day's ` + "`pgdrill up --scenario`" + ` to inject its incident, and print what a pager would
say: which customers report trouble and since when — not how to fix it. The facts a runbook would
get (transactions, WAL positions, backups) are written to ` + drill.IncidentFileName + ` in the game day's
directory; the record the team is scored against stays with ` + "`pgdrill up`" + `.`,
		Example: "  pgdrill incident\n  pgdrill incident r1a2b3c4d -o json",
		Args:    maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dialGameDay(args)
			if err != nil {
				return err
			}
			page, err := c.Incident(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(page, func(w io.Writer) {
				fmt.Fprintf(w, "PAGE  %s  %s\n", page.At.Local().Format(time.TimeOnly), page.Message)
			})
		},
	}
}

// dialGameDay reaches the game day named by args, or the only one running.
func (a *app) dialGameDay(args []string) (*drill.GameDayClient, error) {
	id := ""
	if len(args) == 1 {
		id = args[0]
	}
	return a.host.DialGameDay(id)
}

func (a *app) scoreCommand() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "score [RUN_ID]",
		Short: "Game day: stop the workload, verify every tenant and score the team's restore",
		Long: `Ask the game day's ` + "`pgdrill up --scenario`" + ` to stop its workload, check the backups, verify every
tenant against what its own acknowledged writes say it must hold, and score the restore against
the scenario's objectives: time to restore is the team's, from the incident to now. The scoring
runs in ` + "`pgdrill up`" + `, from what it kept in memory; no file the team can edit takes part.
Writes the reports like ` + "`pgdrill run`" + ` and exits by the verdict. The cluster stays up for a look
until ` + "`pgdrill down`" + `.`,
		Example: "  pgdrill score\n  pgdrill score r1a2b3c4d --out ./gameday-reports",
		Args:    maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dialGameDay(args)
			if err != nil {
				return err
			}
			rep, err := c.Score(cmd.Context())
			if err != nil {
				return err
			}
			if err := a.writeReports(outDir, rep); err != nil {
				return err
			}
			if err := a.print(rep, func(w io.Writer) { printScorecard(w, rep) }); err != nil {
				return err
			}
			return verdictError([]*reports.Report{rep})
		},
	}
	cmd.Flags().StringVar(&outDir, "out", "pgdrill-reports", "directory the reports are written under")
	return cmd
}

// maxArgs rejects more than n arguments as invalid input (exit code 2).
func maxArgs(n int) cobra.PositionalArgs { return rangeArgs(0, n) }

// rangeArgs rejects fewer than least or more than most arguments as invalid input (exit code 2).
func rangeArgs(least, most int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		switch {
		case len(args) > most:
			return invalid("%s takes at most %d argument(s), got %d", cmd.CommandPath(), most, len(args))
		case len(args) < least:
			return invalid("%s takes at least %d argument(s), got %d: see --help", cmd.CommandPath(), least, len(args))
		}
		return nil
	}
}
