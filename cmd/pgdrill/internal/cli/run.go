package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/scenarios"
)

// defaultScenario is what `pgdrill run` runs when given nothing: the incident pgdrill exists for.
const defaultScenario = "wrong-id-deletion"

func (a *app) runCommand() *cobra.Command {
	var (
		strategy string
		seed     uint64
		outDir   string
	)
	cmd := &cobra.Command{
		Use:   "run [SCENARIO|FILE]...",
		Short: "Run drills end to end and score them against their objectives",
		Long: `Run each scenario (a built-in id or a scenario file; default: ` + defaultScenario + `) end to end on a
throwaway cluster: provision, fill with synthetic tenants, protect, start a workload that records
every acknowledged write, break the cluster, detect, restore, verify every tenant against what its
own writes say it must hold, and score the result against the scenario's objectives.

Each drill writes DIR/RUN_ID/report.json and prints a scorecard. The exit code is the worst
verdict's: 0 PASS or PASS_WITH_CONDITIONS, 1 FAIL, 3 ERROR, 4 ABORTED, 5 INCONCLUSIVE.`,
		Example: `  pgdrill run                                   # the default drill: wrong-id-deletion
  pgdrill run wrong-id-deletion --seed 7        # the same drill with other victims
  pgdrill run my-scenario.yaml -o json          # a scenario file of your own; scorecards as JSON
  pgdrill run wrong-id-deletion --strategy pitr-sidecar --out ./reports`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				args = []string{defaultScenario}
			}
			var scs []*scenarios.Scenario
			for _, arg := range args {
				sc, err := scenarios.Lookup(arg)
				if err != nil {
					return exitcode.With(err, exitcode.InvalidInput)
				}
				scs = append(scs, sc)
			}
			var override restore.Strategy
			if strategy != "" {
				s, err := restore.Lookup(strategy)
				if err != nil {
					return exitcode.With(err, exitcode.InvalidInput)
				}
				override = s
			}
			return a.runDrills(cmd.Context(), scs, override, seed, outDir)
		},
	}
	f := cmd.Flags()
	f.StringVar(&strategy, "strategy", "", "restore strategy instead of the scenario's: "+strings.Join(restore.Names(), ", "))
	f.Uint64Var(&seed, "seed", 0, "seed of every random choice instead of the scenario's")
	f.StringVar(&outDir, "out", "pgdrill-reports", "directory the reports are written under, one subdirectory per run")
	return cmd
}

func (a *app) runDrills(ctx context.Context, scs []*scenarios.Scenario, strategy restore.Strategy, seed uint64, outDir string) error {
	p, err := a.localProvider(ctx)
	if err != nil {
		return err
	}
	var outcomes []*drill.Outcome
	for _, sc := range scs {
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: p, Strategy: strategy, Seed: seed, Log: a.log,
			OnStep: func(step string) { a.log.Info("drill step", "scenario", sc.Metadata.ID, "step", step) }})
		outcomes = append(outcomes, out)
		if err := writeOutcome(outDir, out); err != nil {
			return exitcode.With(err, exitcode.HarnessError)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := a.print(outcomes, func(w io.Writer) {
		for _, o := range outcomes {
			printScorecard(w, o)
		}
	}); err != nil {
		return err
	}
	return verdictError(outcomes)
}

// writeOutcome writes the drill's report.json under dir/RUN_ID (dir/SCENARIO-TIME when the
// drill never got a cluster).
func writeOutcome(dir string, o *drill.Outcome) error {
	name := o.RunID
	if name == "" {
		name = o.ScenarioID + "-" + o.Started.Format("20060102T150405")
	}
	path := filepath.Join(dir, name)
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("create report dir: %w", err)
	}
	data, err := json.MarshalIndent(o, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(filepath.Join(path, "report.json"), data, 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// verdictError turns the worst verdict into the process's exit code.
func verdictError(outcomes []*drill.Outcome) error {
	order := []drill.Verdict{drill.Pass, drill.PassWithConditions, drill.Inconclusive, drill.Fail, drill.Aborted, drill.Error}
	codes := map[drill.Verdict]exitcode.Code{drill.Inconclusive: exitcode.Inconclusive, drill.Fail: exitcode.ObjectivesMissed,
		drill.Aborted: exitcode.Aborted, drill.Error: exitcode.HarnessError}
	worst := drill.Pass
	for _, o := range outcomes {
		if slices.Index(order, o.Verdict) > slices.Index(order, worst) {
			worst = o.Verdict
		}
	}
	if code, bad := codes[worst]; bad {
		return exitcode.With(errors.New("worst verdict: "+string(worst)), code)
	}
	return nil
}

// printScorecard prints a drill's verdict and figures for a terminal.
func printScorecard(w io.Writer, o *drill.Outcome) {
	fmt.Fprintf(w, "\n%s  %s  (run %s, seed %d, strategy %s)\n", o.Verdict, o.ScenarioID, o.RunID, o.Seed, o.Strategy)
	fmt.Fprintf(w, "  %s\n", o.Reason)
	if o.Incident != nil {
		var rows int64
		for _, h := range o.Incident.Harms {
			rows += h.Rows
		}
		fmt.Fprintf(w, "  incident: %s harmed %d tenant(s), %d row(s), in %d transaction(s)\n",
			o.Incident.Kind, len(o.Incident.Affected), rows, len(o.Incident.Harms))
	}
	for _, r := range o.Results {
		mark := "ok  "
		switch {
		case r.Inconclusive:
			mark = "??  "
		case !r.Passed:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %-22s %s\n", mark, r.Objective.String(), r.Reason)
	}
	for _, m := range []objective.Metric{objective.Detect, objective.Phase(restore.PhaseReplay), objective.Phase(restore.PhaseMerge)} {
		if v, ok := o.Measures[m]; ok {
			fmt.Fprintf(w, "  %-29s %s\n", string(m)+":", v)
		}
	}
	fmt.Fprintf(w, "  writes acknowledged during the drill: %d; took %s\n", o.Writes, o.Finished.Sub(o.Started).Round(time.Millisecond))
}
