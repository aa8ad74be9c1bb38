package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/atomicfile"
	"github.com/pgdrill/pgdrill/harness/costmodel"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

// CurvesFile is the name of the cost curves a measurement writes.
const CurvesFile = "curves.json"

// Measurement is what pgdrill measure found: the curves fitted, where each drill's reports
// are, and the projection when the scenario names a production size.
type Measurement struct {
	Scenario   string                `json:"scenario"`
	Curves     costmodel.Curves      `json:"curves"`
	Drills     []string              `json:"drills"`
	Projection *costmodel.Projection `json:"projection,omitempty"`
}

func (a *app) measureCommand() *cobra.Command {
	var (
		sizes  []float64
		outDir string
	)
	cmd := &cobra.Command{
		Use:   "measure [SCENARIO|FILE]",
		Short: "Measure the restore's cost curves at several sizes and project the RTO to production size",
		Long: `Run the scenario's drill at several sizes of one shard (each production shard restores on servers
of its own, so one shard alone is what is measured), told the harm so that only the restore is
timed, and fit each restore phase's time to the work it did: provision against GB of shard data,
replay against GB of WAL replayed, merge against tenants and millions of rows merged. Each fit
has every coefficient at least zero, and shows its points, its error (RMSE, R²) and a 95% range.

For each size in --sizes there are two drills: the scenario's victim share after a second of its
workload, and a third of the victims after four seconds of ten times its write rate (more WAL to
replay), so that the fit can tell the features apart.

The curves are written to DIR/measure-TIME/curves.json. When the scenario names a production
size (spec.projection), the restore is projected to it, phase by phase, as a range, with the phase
that dominates: always labelled a projection from this machine's measurements, never a measured
RTO. pgdrill run --curves FILE puts that projection in a drill's scorecard and report.json.`,
		Example: `  pgdrill measure atlassian-2022                       # 6 drills of one shard at 1/4, 1/2 and all of a shard's share
  pgdrill measure atlassian-2022 --sizes 0.5,1,2       # larger points
  pgdrill measure ours.yaml -o json > measurement.json
  pgdrill run atlassian-2022 --curves pgdrill-reports/measure-20261203T101500/curves.json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := "atlassian-2022"
			if len(args) == 1 {
				id = args[0]
			}
			base, err := scenarios.Lookup(id)
			if err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			if len(sizes) == 0 {
				return invalid("--sizes: give at least one size")
			}
			for _, s := range sizes {
				if s <= 0 || math.IsInf(s, 0) || math.IsNaN(s) {
					return invalid("--sizes: %v is not a size above 0", s)
				}
			}
			if base.Spec.Restore.Strategy != scenarios.PITRSidecar {
				return invalid("measure fits the pitr-sidecar's phases (provision, replay, merge); scenario %s restores with %s", base.Metadata.ID, base.Spec.Restore.Strategy)
			}
			return a.measure(cmd.Context(), id, sizes, outDir)
		},
	}
	f := cmd.Flags()
	f.Float64SliceVar(&sizes, "sizes", []float64{0.25, 0.5, 1}, "sizes measured, as shares of one shard of the scenario (its tenants and rows divided by its shards)")
	f.StringVar(&outDir, "out", "pgdrill-reports", "directory the measurement is written under (DIR/measure-TIME)")
	return cmd
}

// sweepPoint is one drill of a measurement: the scenario shrunk to one shard of size factor, with
// victims and WAL varied apart.
func sweepPoint(id string, size float64, fewer bool) (*scenarios.Scenario, error) {
	sc, err := scenarios.Lookup(id)
	if err != nil {
		return nil, err
	}
	sp := &sc.Spec
	shards := float64(sp.Cluster.Shards)
	sp.Cluster.Shards = 1
	sp.Dataset.Tenants = max(8, int(math.Round(float64(sp.Dataset.Tenants)/shards*size)))
	sp.Dataset.Rows = max(int64(sp.Dataset.Tenants)*64, int64(math.Round(float64(sp.Dataset.Rows)/shards*size)))
	sp.Detection.Knowledge = scenarios.KnowledgeTold
	sp.Detection.Delay = scenarios.Duration(200 * time.Millisecond)
	sp.Incident.After = scenarios.Duration(time.Second)
	if fewer {
		sp.Incident.Fraction /= 3
		sp.Incident.After = scenarios.Duration(4 * time.Second)
		sp.Workload.Rate = min(scenarios.MaxRate, max(sp.Workload.Rate, 100)*10)
	}
	sp.Faults = nil
	return sc, nil
}

func (a *app) measure(ctx context.Context, id string, sizes []float64, outDir string) error {
	base, err := scenarios.Lookup(id)
	if err != nil {
		return exitcode.With(err, exitcode.InvalidInput)
	}
	provider, err := a.host.ScenarioProvider(ctx, base)
	if err != nil {
		return err
	}
	dir := filepath.Join(outDir, "measure-"+time.Now().UTC().Format("20060102T150405"))
	m := Measurement{Scenario: base.Metadata.ID}
	points := map[string][]costmodel.Point{}
	for _, size := range sizes {
		for _, fewer := range []bool{false, true} {
			sc, err := sweepPoint(id, size, fewer)
			if err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			a.log.Info("measuring", "scenario", sc.Metadata.ID, "tenants", sc.Spec.Dataset.Tenants, "rows", sc.Spec.Dataset.Rows,
				"fraction", sc.Spec.Incident.Fraction)
			out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: a.log})
			rep := drill.Report(out)
			if err := a.writeReports(dir, rep); err != nil {
				return err
			}
			m.Drills = append(m.Drills, filepath.Join(dir, rep.RunID))
			if ctx.Err() != nil {
				return exitcode.With(fmt.Errorf("measure %s: interrupted", id), exitcode.Aborted)
			}
			if out.Verdict == score.Error || out.Verdict == score.Aborted || out.Restore == nil {
				return exitcode.With(fmt.Errorf("measure %s: the drill of %d tenants and %d rows did not restore: %s: %s",
					id, sc.Spec.Dataset.Tenants, sc.Spec.Dataset.Rows, out.Verdict, out.Reason), exitcode.HarnessError)
			}
			for phase, ps := range out.CostPoints() {
				points[phase] = append(points[phase], ps...)
			}
		}
	}
	if m.Curves, err = costmodel.FitAll(machine(provider.Name()), points); err != nil {
		return exitcode.With(fmt.Errorf("measure %s: %w", id, err), exitcode.HarnessError)
	}
	if p := base.Spec.Projection; p != nil {
		proj, err := costmodel.Project(m.Curves, p.Production())
		if err != nil {
			return exitcode.With(fmt.Errorf("measure %s: %w", id, err), exitcode.InvalidInput)
		}
		m.Projection = &proj
	}
	data, err := json.MarshalIndent(m.Curves, "", "  ")
	if err != nil {
		return fmt.Errorf("encode curves: %w", err)
	}
	path := filepath.Join(dir, CurvesFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return exitcode.With(fmt.Errorf("write curves: %w", err), exitcode.HarnessError)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o644); err != nil {
		return exitcode.With(fmt.Errorf("write curves: %w", err), exitcode.HarnessError)
	}
	a.log.Info("curves written", "file", path)
	return a.print(m, func(w io.Writer) { printMeasurement(w, m, path) })
}

// machine describes where curves are measured.
func machine(provider string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d cores, provider %s", host, runtime.NumCPU(), provider)
}

// printMeasurement prints each curve with its points and error, then the projection.
func printMeasurement(w io.Writer, m Measurement, path string) {
	fmt.Fprintf(w, "cost curves of %s on %s (one shard alone):\n", m.Scenario, m.Curves.Machine)
	for _, c := range m.Curves.Curves {
		var terms []string
		for i, f := range c.Features {
			terms = append(terms, fmt.Sprintf("%.4g %s", c.Coefficients[i], f.Unit()))
		}
		fmt.Fprintf(w, "\n  %-9s = %s   (RMSE %.2f s, R² %.3f, %d points)\n", c.Phase, strings.Join(terms, " + "), c.RMSE, c.R2, len(c.Points))
		for _, p := range c.Points {
			var work []string
			for _, f := range c.Features[1:] {
				work = append(work, fmt.Sprintf("%s %.4g", f, p.Work[f]))
			}
			fmt.Fprintf(w, "    %-40s %7.2f s   %s\n", strings.Join(work, ", "), p.Seconds, p.Label)
		}
	}
	if m.Projection != nil {
		fmt.Fprintln(w)
		for _, l := range (&reports.Report{Projection: m.Projection}).ProjectionLines() {
			fmt.Fprintf(w, "  projected: %s\n", l)
		}
	}
	fmt.Fprintf(w, "\n  curves: %s\n", path)
}

// readCurves reads cost curves a measurement wrote (pgdrill measure), for --curves.
func readCurves(path string) (*costmodel.Curves, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, invalid("--curves: %v", err)
	}
	var c costmodel.Curves
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, invalid("--curves %s: not curves pgdrill measure wrote: %v", path, err)
	}
	return &c, nil
}
