package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
)

func (a *app) downCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "down [RUN_ID...]",
		Short: "Tear down clusters left running (detached, or left by a killed pgdrill)",
		Long: `Stop the servers of the named runs (or of every recorded run with --all) and remove their
directories and records. Only processes whose pid, start time and data directory match the run's
record are signalled; only directories marked with the run's id are removed. Runs still owned by
a live ` + "`pgdrill up`" + ` (not detached, a game day say) are stopped by asking that process to tear
down (SIGTERM) when named, and skipped by --all.`,
		Example: `  pgdrill down r1a2b3c4d
  pgdrill down --all`,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := a.host.Down(cmd.Context(), args, all)
			if perr := a.print(res, func(w io.Writer) { printDown(w, res) }); perr != nil {
				return perr
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "tear down every recorded run that no live pgdrill owns")
	return cmd
}

func printDown(w io.Writer, res drill.DownResult) {
	if len(res.Removed)+len(res.Stopped)+len(res.Skipped) == 0 {
		fmt.Fprintln(w, "nothing to tear down")
	}
	for _, id := range res.Removed {
		fmt.Fprintf(w, "removed %s\n", id)
	}
	for _, id := range res.Stopped {
		fmt.Fprintf(w, "stopped %s: its pgdrill up tore it down\n", id)
	}
	for _, id := range res.Skipped {
		fmt.Fprintf(w, "skipped %s: its pgdrill up is still running (name it to stop it)\n", id)
	}
}
