package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/runstate"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

// gameDaysDir holds one directory per running game day, under the state dir.
func (a *app) gameDaysDir() (string, error) {
	store, err := a.store()
	if err != nil {
		return "", err
	}
	return filepath.Join(store.Dir(), "gamedays"), nil
}

// gameDay runs `pgdrill up --scenario`: prepares the drill, keeps its workload running, stops the
// workload when `pgdrill score` asks (SIGUSR1), and tears everything down on Ctrl-C or SIGTERM
// (which `pgdrill down` sends).
func (a *app) gameDay(ctx context.Context, sc *scenarios.Scenario, seed uint64) error {
	p, err := a.localProvider(ctx)
	if err != nil {
		return err
	}
	root, err := a.gameDaysDir()
	if err != nil {
		return err
	}
	g, err := drill.StartGameDay(ctx, drill.Config{Scenario: sc, Provider: p, Seed: seed, Log: a.log}, root)
	defer func() {
		g.Teardown(ctx)
		if err := g.Remove(); err != nil {
			a.log.Warn("could not remove the game day's files", "err", err)
		}
	}()
	if err != nil {
		return exitcode.With(err, exitcode.HarnessError)
	}
	out := upOutput{Description: cluster.Describe(g.Cluster())}
	if err := a.print(out, func(w io.Writer) {
		printDescription(w, out, false)
		fmt.Fprintf(w, "game day %q is ready: the workload is writing to every tenant.\n", sc.Metadata.ID)
		fmt.Fprintf(w, "next: pgdrill incident %s   (then restore, then: pgdrill score %s)\n", out.RunID, out.RunID)
	}); err != nil {
		return err
	}
	score := make(chan os.Signal, 1)
	signal.Notify(score, syscall.SIGUSR1)
	defer signal.Stop(score)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-score:
			if err := g.StopWorkload(); err != nil {
				a.log.Error("could not stop the workload for scoring", "err", err)
				continue
			}
			a.log.Info("workload stopped for scoring; Ctrl-C or `pgdrill down` tears the cluster down", "run_id", out.RunID)
		}
	}
}

// findGameDay returns the directory of the named game day, or of the only one running.
func (a *app) findGameDay(args []string) (string, error) {
	root, err := a.gameDaysDir()
	if err != nil {
		return "", err
	}
	if len(args) == 1 {
		dir := filepath.Join(root, args[0])
		if _, err := os.Stat(dir); err != nil {
			return "", invalid("no game day %q (start one with `pgdrill up --scenario ...`)", args[0])
		}
		return dir, nil
	}
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", exitcode.With(fmt.Errorf("list game days: %w", err), exitcode.HarnessError)
	}
	switch len(entries) {
	case 0:
		return "", invalid("no game day is running; start one with `pgdrill up --scenario wrong-id-deletion`")
	case 1:
		return filepath.Join(root, entries[0].Name()), nil
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return "", invalid("%d game days are running (%s): name one", len(entries), strings.Join(names, ", "))
}

func (a *app) incidentCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "incident [RUN_ID]",
		Short: "Game day: break the cluster the way the scenario says, and page the team",
		Long: `Inject the game day's incident (` + "`pgdrill up --scenario`" + ` started it) and print what a pager would
say: which customers report trouble and since when — not how to fix it. The exact record of the
harm (transactions, WAL positions) is kept for scoring and for ` + "`pgdrill restore`" + `.`,
		Example: "  pgdrill incident\n  pgdrill incident r1a2b3c4d -o json",
		Args:    maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.findGameDay(args)
			if err != nil {
				return err
			}
			g, err := drill.LoadGameDay(dir, cluster.Remote, a.log)
			if err != nil {
				return exitcode.With(err, exitcode.HarnessError)
			}
			rec, err := g.Inject(cmd.Context())
			if err != nil {
				return exitcode.With(err, exitcode.HarnessError)
			}
			page := pageOf(g.Outcome().ScenarioID, rec.First(), rec.Affected)
			page.RunID = rec.RunID
			return a.print(page, func(w io.Writer) {
				fmt.Fprintf(w, "PAGE  %s  %s\n", page.At.Local().Format(time.TimeOnly), page.Message)
			})
		},
	}
}

// page is what the on-call engineer is told.
type page struct {
	RunID   string    `json:"run_id"`
	At      time.Time `json:"at"`
	Tenants []int64   `json:"tenants"`
	Message string    `json:"message"`
}

func pageOf(scenario string, at time.Time, affected []incident.Tenant) page {
	p := page{At: at}
	shards := map[int]bool{}
	for _, t := range affected {
		p.Tenants = append(p.Tenants, t.ID)
		shards[t.Shard] = true
	}
	p.Message = fmt.Sprintf("SEV-1 (%s): support reports %d customer(s) whose data is missing or wrong since about %s — tenants %v. "+
		"Everyone else seems fine. Restore them, then run `pgdrill score`.", scenario, len(p.Tenants), at.Local().Format(time.TimeOnly), p.Tenants)
	return p
}

func (a *app) scoreCommand() *cobra.Command {
	var outDir string
	cmd := &cobra.Command{
		Use:   "score [RUN_ID]",
		Short: "Game day: stop the workload, verify every tenant and score the team's restore",
		Long: `Stop the game day's workload, verify every tenant against what its own acknowledged writes say it
must hold, and score the restore against the scenario's objectives: time to restore is the team's,
from the incident to now; the phases of any ` + "`pgdrill restore`" + ` they ran are the machine's share.
Writes the reports like ` + "`pgdrill run`" + ` and exits by the verdict. The cluster stays up for a look
until ` + "`pgdrill down`" + `.`,
		Example: "  pgdrill score\n  pgdrill score r1a2b3c4d --out ./gameday-reports",
		Args:    maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := a.findGameDay(args)
			if err != nil {
				return err
			}
			if err := a.stopGameDayWorkload(cmd.Context(), filepath.Base(dir), dir); err != nil {
				return exitcode.With(err, exitcode.HarnessError)
			}
			g, err := drill.LoadGameDay(dir, cluster.Remote, a.log)
			if err != nil {
				return exitcode.With(err, exitcode.HarnessError)
			}
			out := g.Score(cmd.Context())
			rep := drill.Report(out, g.Scenario())
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

// stopGameDayWorkload asks the game day's `pgdrill up` to stop its workload and waits for the
// ledger it writes.
func (a *app) stopGameDayWorkload(ctx context.Context, runID, dir string) error {
	if drill.HasLedger(dir) {
		return nil
	}
	store, err := a.store()
	if err != nil {
		return err
	}
	rec, err := store.Load(runID)
	if err != nil {
		return fmt.Errorf("find the game day's pgdrill up: %w", err)
	}
	if !rec.Owner.Alive() {
		return errors.New("the game day's `pgdrill up` is not running any more; its workload's ledger is lost")
	}
	if err := signalOwner(rec.Owner, syscall.SIGUSR1); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for !drill.HasLedger(dir) {
		if time.Now().After(deadline) {
			return errors.New("the game day's `pgdrill up` did not stop its workload within a minute")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
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

// maxArgs rejects more than n arguments as invalid input (exit code 2).
func maxArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > n {
			return invalid("%s takes at most %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
