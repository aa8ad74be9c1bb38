package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

// CurvesFile is the name of the cost curves a measurement writes.
const CurvesFile = "curves.json"

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
			return a.measure(cmd.Context(), id, sizes, outDir)
		},
	}
	f := cmd.Flags()
	f.Float64SliceVar(&sizes, "sizes", []float64{0.25, 0.5, 1}, "sizes measured, as shares of one shard of the scenario (its tenants and rows divided by its shards)")
	f.StringVar(&outDir, "out", "pgdrill-reports", "directory the measurement is written under (DIR/measure-TIME)")
	return cmd
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
	m, err := drill.Measure(ctx, drill.MeasureConfig{Scenario: id, Sizes: sizes, Provider: provider, Log: a.log,
		Drilled: func(out *drill.Outcome) (string, error) {
			rep := drill.Report(out)
			return filepath.Join(dir, rep.RunID), a.writeReports(dir, rep)
		}})
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(m.Curves, "", "  ")
	if err != nil {
		return fmt.Errorf("encode curves: %w", err)
	}
	path := filepath.Join(dir, CurvesFile)
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return exitcode.With(fmt.Errorf("write curves: %w", err), exitcode.HarnessError)
	}
	a.log.Info("curves written", "file", path)
	return a.print(m, func(w io.Writer) { printMeasurement(w, m, path) })
}

// printMeasurement prints each curve with its points and error, then the projection.
func printMeasurement(w io.Writer, m drill.Measurement, path string) {
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
