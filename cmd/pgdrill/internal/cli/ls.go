package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) lsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List the clusters pgdrill has recorded as live",
		Example: "  pgdrill ls\n  pgdrill ls -o json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			out, err := a.host.Runs()
			if err != nil {
				return err
			}
			return a.print(out, func(w io.Writer) {
				if len(out) == 0 {
					fmt.Fprintln(w, "no live clusters")
					return
				}
				fmt.Fprintf(w, "%-10s %-8s %-9s %-7s %s\n", "RUN ID", "PROVIDER", "STATE", "SERVERS", "CREATED")
				for _, r := range out {
					fmt.Fprintf(w, "%-10s %-8s %-9s %-7d %s\n", r.RunID, r.Provider, r.State, r.Servers,
						r.Created.Local().Format(time.DateTime))
				}
			})
		},
	}
}
