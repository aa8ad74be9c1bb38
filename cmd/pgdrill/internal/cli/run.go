package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

// defaultScenario is what `pgdrill run` runs when given nothing: the incident pgdrill exists for.
const defaultScenario = "wrong-id-deletion"

func (a *app) runCommand() *cobra.Command {
	var (
		strategy  string
		runbook   string
		timeout   time.Duration
		seed      uint64
		outDir    string
		knowledge string
		curves    string
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
  pgdrill run wrong-id-deletion --knowledge told  # hand the restore the harm: what finding it costs, by comparison
  pgdrill run my-scenario.yaml -o json          # a scenario file of your own; scorecards as JSON
  pgdrill run wrong-id-deletion --strategy pitr-sidecar --out ./reports
  pgdrill run atlassian-2022 --curves pgdrill-reports/measure-20261203T101500/curves.json  # and its projection to production size
  pgdrill run --runbook ./our-restore.sh --runbook-timeout 20m   # drill your own procedure
  pgdrill run --provider container              # every server a container (pgdrill image build first)
  DOCKER_HOST=tcp://drill-host:2375 pgdrill run --provider container   # on a bigger machine's engine
  pgdrill run --provider existing --catalog-url postgres://drill@cat:5432/postgres \
    --shard-url postgres://drill@s0:5432/postgres --shard-url ...   # servers you run (one per shard)`,
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
				if knowledge != "" {
					if sc, err = scenarios.WithKnowledge(sc, scenarios.Knowledge(knowledge)); err != nil {
						return exitcode.With(err, exitcode.InvalidInput)
					}
				}
				scs = append(scs, sc)
			}
			var override *scenarios.Restore
			switch {
			case runbook != "" && strategy != "":
				return invalid("--runbook and --strategy both choose the restore: give one")
			case runbook != "":
				override = &scenarios.Restore{Strategy: scenarios.RunbookStrategy,
					Runbook: &scenarios.Runbook{Command: runbook, Timeout: scenarios.Duration(timeout)}}
			case strategy != "":
				override = &scenarios.Restore{Strategy: scenarios.Strategy(strategy)}
			}
			if override != nil {
				for _, sc := range scs { // refused before any drill starts; each drill checks again
					if _, _, err := scenarios.WithStrategy(sc, *override); err != nil {
						return exitcode.With(err, exitcode.InvalidInput)
					}
				}
			}
			var measured *drill.Curves
			if curves != "" {
				var err error
				if measured, err = drill.ReadCurves(curves); err != nil {
					return err
				}
				for _, sc := range scs {
					if sc.Spec.Projection == nil {
						return invalid("--curves: scenario %s names no production size to project to (spec.projection)", sc.Metadata.ID)
					}
				}
			}
			return a.runDrills(cmd.Context(), scs, override, seed, outDir, measured)
		},
	}
	f := cmd.Flags()
	f.StringVar(&strategy, "strategy", "", "restore strategy instead of the scenario's (its protection is turned on when missing): "+
		strings.Join(builtinStrategies(), ", "))
	f.StringVar(&runbook, "runbook", "", "restore with this command (run by /bin/sh -c) instead of the scenario's strategy; it gets $"+
		drill.IncidentFileEnv+" and may call `pgdrill restore`")
	f.DurationVar(&timeout, "runbook-timeout", scenarios.DefaultRunbookTimeout, "how long --runbook may run before it is stopped and the drill fails")
	f.Uint64Var(&seed, "seed", 0, "seed of every random choice instead of the scenario's")
	f.StringVar(&outDir, "out", "pgdrill-reports", "directory the reports are written under, one subdirectory per run")
	f.StringVar(&curves, "curves", "", "cost curves from `pgdrill measure` (its curves.json): project the restore to the scenario's production size (spec.projection) in the scorecard")
	f.StringVar(&knowledge, "knowledge", "", "what the restore is told instead of the scenario's: told (every harm and victim) or blind (a ticket: a few victims, about when)")
	return cmd
}

// builtinStrategies lists the strategies --strategy takes: every one but the runbook, which
// --runbook chooses.
func builtinStrategies() []string {
	return scenarios.StrategiesWhere(func(s scenarios.StrategyInfo) bool { return s.Name != scenarios.RunbookStrategy })
}

func (a *app) runDrills(ctx context.Context, scs []*scenarios.Scenario, override *scenarios.Restore, seed uint64, outDir string, curves *drill.Curves) error {
	providers := make([]drill.Provider, len(scs)) // all found before the first drill starts
	for i, sc := range scs {
		p, err := a.host.ScenarioProvider(ctx, sc)
		if err != nil {
			return err
		}
		providers[i] = p
	}
	runbookEnv, err := a.host.RunbookEnv()
	if err != nil {
		return err
	}
	var reps []*reports.Report
	var invalid error
	for i, sc := range scs {
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: providers[i], Restore: override, Seed: seed, Log: a.log, RunbookOutput: a.st.Stderr,
			RunbookEnv: runbookEnv, Curves: curves,
			OnStep: func(step string) { a.log.Info("drill step", "scenario", sc.Metadata.ID, "step", step) }})
		if out.InvalidInput && invalid == nil {
			invalid = exitcode.With(fmt.Errorf("scenario %s: %s", sc.Metadata.ID, out.Reason), exitcode.InvalidInput)
		}
		rep := drill.Report(out)
		if err := a.writeReports(outDir, rep); err != nil {
			return err
		}
		reps = append(reps, rep)
		if ctx.Err() != nil {
			break
		}
	}
	if err := a.print(reps, func(w io.Writer) {
		for _, r := range reps {
			printScorecard(w, r)
		}
		if len(reps) > 1 {
			printComparison(w, reps)
		}
	}); err != nil {
		return err
	}
	if invalid != nil {
		return invalid
	}
	return verdictError(reps)
}

// writeReports writes every rendering of a drill's report under dir/RUN_ID (dir/SCENARIO-TIME
// when the drill never got a cluster).
func (a *app) writeReports(dir string, r *reports.Report) error {
	name := r.RunID
	if name == "" {
		name = r.Scenario.ID + "-" + r.Started.Format("20060102T150405")
	}
	path := filepath.Join(dir, name)
	r.Artifacts = append(r.Artifacts, reports.Artifact{Name: "reports", Path: path})
	return a.renderReports(path, r)
}

// renderReports writes every rendering of a report into dir, and appends its summary to
// $GITHUB_STEP_SUMMARY when set.
func (a *app) renderReports(path string, r *reports.Report) error {
	files, err := reports.WriteAll(path, r)
	if err != nil {
		return exitcode.With(fmt.Errorf("write reports: %w", err), exitcode.HarnessError)
	}
	a.log.Info("reports written", "dir", path, "files", len(files))
	if _, err := reports.AppendStepSummary(a.env, r); err != nil {
		a.log.Warn("could not append to the CI step summary", "err", err)
	}
	return nil
}

// verdictError turns the worst verdict into the process's exit code.
func verdictError(reps []*reports.Report) error {
	order := []reports.Verdict{reports.Pass, reports.PassWithConditions, reports.Inconclusive, reports.Fail, reports.Aborted, reports.Error}
	codes := map[reports.Verdict]exitcode.Code{reports.Inconclusive: exitcode.Inconclusive, reports.Fail: exitcode.ObjectivesMissed,
		reports.Aborted: exitcode.Aborted, reports.Error: exitcode.HarnessError}
	worst := reports.Pass
	for _, r := range reps {
		if slices.Index(order, r.Verdict) > slices.Index(order, worst) {
			worst = r.Verdict
		}
	}
	if code, bad := codes[worst]; bad {
		return exitcode.With(errors.New("worst verdict: "+string(worst)), code)
	}
	return nil
}

// printComparison lines several drills up side by side: what `pgdrill run A B ...` is for.
func printComparison(w io.Writer, reps []*reports.Report) {
	fmt.Fprintf(w, "\n%-24s %-20s %-22s %-10s %-10s %s\n", "SCENARIO", "STRATEGY", "VERDICT", "RTO", "RPO", "COMPLETENESS")
	for _, r := range reps {
		fmt.Fprintf(w, "%-24s %-20s %-22s %-10s %-10s %s\n", r.Scenario.ID, r.Strategy, r.Verdict.Symbol()+" "+string(r.Verdict),
			reports.MS(r.Measures.RTOMS), reports.MS(r.Measures.RPOMS), reports.Percent(r.Measures.Completeness()))
	}
}

// printScorecard prints a drill's verdict and figures for a terminal: the verdict in words and a
// symbol (never colour alone), the headline, then each objective.
func printScorecard(w io.Writer, r *reports.Report) {
	fmt.Fprintf(w, "\n%s %s  %s  (run %s, seed %d, strategy %s)\n", r.Verdict.Symbol(), r.Verdict, r.Scenario.ID, r.RunID, r.Seed, r.Strategy)
	fmt.Fprintf(w, "  %s\n", r.Headline())
	fmt.Fprintf(w, "  %s\n", r.Reason)
	if k := r.Incident.KnowledgeLine(); k != "" {
		fmt.Fprintf(w, "  %s\n", k)
	}
	for _, o := range r.Objectives {
		mark := "ok  "
		switch {
		case o.Inconclusive:
			mark = "??  "
		case !o.Passed:
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  [%s] %-22s %s\n", mark, o.Expression, o.Reason)
	}
	for _, p := range r.Measures.Phases {
		fmt.Fprintf(w, "  %-28s %s\n", "phase "+p.Name+":", reports.MS(&p.MS))
	}
	for _, l := range r.ProjectionLines() {
		fmt.Fprintf(w, "  projected: %s\n", l)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, a := range r.NextActions {
		fmt.Fprintf(w, "  next: %s\n", a)
	}
	if len(r.Artifacts) > 0 {
		fmt.Fprintf(w, "  reports: %s\n", r.Artifacts[0].Path)
	}
}
