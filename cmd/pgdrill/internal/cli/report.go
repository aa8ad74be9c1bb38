package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/reports"
	"github.com/pgdrill/pgdrill/scenarios"
)

func (a *app) reportCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "report DIR",
		Short: "Render a drill's report.json again: junit.xml, summary.md, scorecard.html",
		Long: `Read DIR/report.json (written by ` + "`pgdrill run`" + `), check it against the report schema, and write
every rendering next to it again: junit.xml for CI, summary.md for a CI step summary (also appended
to $GITHUB_STEP_SUMMARY when set) and scorecard.html, one self-contained page for leadership.`,
		Example: `  pgdrill report pgdrill-reports/r1a2b3c4d
  pgdrill report trend pgdrill-reports --out pgdrill-reports/trend`,
		Args: exactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			r, err := reports.Read(args[0])
			if err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			if err := a.renderReports(args[0], r); err != nil {
				return err
			}
			return a.print(r, func(w io.Writer) { printScorecard(w, r) })
		},
	}
	cmd.AddCommand(a.trendCommand())
	return cmd
}

func (a *app) trendCommand() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "trend DIR...",
		Short: "Write a trend page over many drills: RTO and pass rate per scenario over time",
		Long: `Read every report.json below the given directories and write trend.html and trend.json: RTO and
pass rate over time per scenario, the last run of each scenario, and the scenarios not run lately.`,
		Example: "  pgdrill report trend pgdrill-reports\n  pgdrill report trend nightly/ weekly/ --out site/trend",
		Args:    minArgs(1),
		RunE: func(_ *cobra.Command, dirs []string) error {
			var ids []string // so that a built-in scenario never run shows as not run lately
			for _, sc := range scenarios.Builtin() {
				ids = append(ids, sc.Metadata.ID)
			}
			t, err := reports.Trend(reports.TrendOptions{Scenarios: ids}, dirs...)
			if err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			if out == "" {
				out = dirs[0]
			}
			files, err := reports.WriteTrend(out, t)
			if err != nil {
				return exitcode.With(err, exitcode.HarnessError)
			}
			return a.print(t, func(w io.Writer) {
				for _, f := range files {
					fmt.Fprintln(w, f)
				}
			})
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write trend.html and trend.json to (default: the first DIR)")
	return cmd
}

// exactArgs and minArgs reject a wrong number of arguments as invalid input (exit code 2).
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return invalid("%s takes %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}

func minArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return invalid("%s takes at least %d argument(s), got %d", cmd.CommandPath(), n, len(args))
		}
		return nil
	}
}
