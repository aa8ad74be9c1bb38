package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
)

func (a *app) doctorCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check that this machine can run drills, and say how to fix what is missing",
		Long: `Check the Postgres binaries, the account servers run as, the work root and state directory,
leftover clusters, and the Docker engine (needed only by the container provider). Changes nothing.
Exits 3 when a check fails.`,
		Example: "  pgdrill doctor\n  pgdrill doctor -o json --pg-bin /usr/lib/postgresql/15/bin",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			checks := a.host.Doctor(cmd.Context())
			if err := a.print(checks, func(w io.Writer) { printChecks(w, checks) }); err != nil {
				return err
			}
			failed := 0
			for _, c := range checks {
				if c.Status == "fail" {
					failed++
				}
			}
			if failed > 0 {
				return exitcode.With(fmt.Errorf("doctor: %d check(s) failed", failed), exitcode.HarnessError)
			}
			return nil
		},
	}
}

func printChecks(w io.Writer, checks []drill.Check) {
	for _, c := range checks {
		fmt.Fprintf(w, "[%-4s] %-18s %s\n", c.Status, c.Name, c.Detail)
		if c.Fix != "" {
			fmt.Fprintf(w, "       %-18s fix: %s\n", "", c.Fix)
		}
	}
}
