package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
)

// runListing is one line of `pgdrill ls`.
type runListing struct {
	RunID    string    `json:"run_id"`
	Provider string    `json:"provider"`
	Created  time.Time `json:"created"`
	Servers  int       `json:"servers"`
	// State is "running" (its pgdrill up is alive), "detached", or "orphaned" (left by a killed
	// pgdrill; the next pgdrill start or `pgdrill down` reaps it).
	State string `json:"state"`
}

func (a *app) lsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "ls",
		Short:   "List the clusters pgdrill has recorded as live",
		Example: "  pgdrill ls\n  pgdrill ls -o json",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			store, err := a.store()
			if err != nil {
				return err
			}
			recs, err := selectRuns(store, nil)
			if err != nil {
				return err
			}
			out := make([]runListing, 0, len(recs))
			for _, r := range recs {
				state := "running"
				switch {
				case r.Detached:
					state = "detached"
				case r.Orphaned():
					state = "orphaned"
				}
				out = append(out, runListing{RunID: r.RunID, Provider: r.Provider, Created: r.Created,
					Servers: len(r.Servers), State: state})
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
