package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
)

func (a *app) locateCommand() *cobra.Command {
	var tenants []int64
	var since, until, intended string
	cmd := &cobra.Command{
		Use:   "locate --tenant ID --since TIME [RUN_ID]",
		Short: "Find the transactions that harmed the tenants support reported, every other tenant they harmed, and the recovery target",
		Long: `Find the harm the way a responder must: from a few tenants the tickets name and about when, never the
answer. Every shard's WAL archive is read from its base backup to now (pg_waldump); the
transactions committed in the window that deleted or overwrote rows, dropped tables or databases,
or altered columns are kept; a sidecar recovered to just before the first of them says whose rows
they were, and the live shard what an overwrite wrote (one column, or a soft delete's mark) or which
column a migration dropped. A transaction that changed a reported tenant in bulk is harmful, and so
is one that did the same to other tenants through the same tables (the same script, in another
transaction or on another shard); every tenant a harmful transaction touched is a victim. Each
shard's recovery target is just before its first harm; a shard that does not answer is taken as
lost, with every tenant on it.

Inside a runbook ($` + drill.IncidentFileEnv + ` set) it searches the incident's run; otherwise the
game day's. --since and --until take a time (RFC 3339, or 15:04[:05] today) or how long ago (10m).

Exit codes: 0 searched (whatever it found), 2 invalid input, 3 the harness broke.`,
		Example: `  pgdrill locate --tenant 1042 --since 10m            # on a game day: the ticket says "since about 10 minutes"
  pgdrill locate --tenant 1042 --tenant 1077 --since 10:40 -o json
  pgdrill locate --tenant 1042 --since 5m --intended soft-delete  # the job should only have marked rows deleted
  pgdrill locate --tenant 1042 --since 2026-12-02T10:40:00Z --until 2026-12-02T11:00:00Z`,
		Args: maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			if len(tenants) == 0 {
				return invalid("--tenant is required: a tenant the tickets name")
			}
			if since == "" {
				return invalid("--since is required: about when the reported data went missing")
			}
			if intended != "" && intended != drill.MeantSoftDelete {
				return invalid("--intended %q: the one purpose known is %s", intended, drill.MeantSoftDelete)
			}
			rep := drill.Ticket{Tenants: tenants, To: now, Intended: intended}
			var err error
			if rep.From, err = parseWhen(since, now); err != nil {
				return invalid("--since: %v", err)
			}
			if until != "" {
				if rep.To, err = parseWhen(until, now); err != nil {
					return invalid("--until: %v", err)
				}
			}
			if !rep.From.Before(rep.To) {
				return invalid("--since %s is not before --until %s", rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339))
			}
			ctx := cmd.Context()
			var found []drill.Finding
			if path := a.env(drill.IncidentFileEnv); path != "" && len(args) == 0 {
				found, err = a.host.LocateFromIncidentFile(ctx, path, rep)
			} else {
				var c *drill.GameDayClient
				if c, err = a.dialGameDay(args); err != nil {
					return err
				}
				found, err = c.Locate(ctx, rep)
			}
			if err != nil {
				return err
			}
			return a.print(found, func(w io.Writer) { printFindings(w, found) })
		},
	}
	cmd.Flags().Int64SliceVar(&tenants, "tenant", nil, "a tenant the tickets name (repeat, or a comma-separated list)")
	cmd.Flags().StringVar(&since, "since", "", "start of the window: a time, or how long ago")
	cmd.Flags().StringVar(&until, "until", "", "end of the window (default: now)")
	cmd.Flags().StringVar(&intended, "intended", "", "what the failing job was meant to do, when known: "+drill.MeantSoftDelete+
		" (its deletes come back marked deleted at their commit)")
	return cmd
}

// parseWhen reads a time as RFC 3339, as a clock time today (15:04 or 15:04:05, local), or as a
// duration before now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"15:04:05", "15:04"} {
		if t, err := time.ParseInLocation(layout, s, now.Location()); err == nil {
			return time.Date(now.Year(), now.Month(), now.Day(), t.Hour(), t.Minute(), t.Second(), 0, now.Location()), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is not a time (2026-12-02T10:40:00Z, 10:40) nor how long ago (10m)", s)
}

// printFindings writes each shard's harms, then every victim.
func printFindings(w io.Writer, found []drill.Finding) {
	var victims []int64
	for _, f := range found {
		fmt.Fprintf(w, "shard %d: %d harmful transaction(s) of %d that changed rows in the window", f.Shard, len(f.Harms), f.Considered)
		switch {
		case f.RecoverTo.XID != "":
			fmt.Fprintf(w, "; recover to just before xid %s", f.RecoverTo.XID)
		case f.RecoverTo.LSN != "":
			fmt.Fprintf(w, "; recover to just before %s", f.RecoverTo.LSN)
		}
		fmt.Fprintln(w)
		for _, h := range f.Harms {
			if h.ServerLost {
				fmt.Fprintf(w, "  shard lost: recover everything archived\n    %s: %s\n", h.Confidence, h.Why)
			} else {
				fmt.Fprintf(w, "  xid %d  committed %s  WAL %s..%s  %s: %s\n    %s: %s\n", h.XID, h.Time.Local().Format("15:04:05.000"),
					h.FirstLSN, h.CommitLSN, h.What(), strings.Join(h.Tables, ","), h.Confidence, h.Why)
			}
			var parts []string
			for _, id := range slices.Sorted(maps.Keys(h.Tenants)) {
				parts = append(parts, fmt.Sprintf("%d (%d rows)", id, h.Tenants[id]))
			}
			fmt.Fprintf(w, "    tenants: %s\n", strings.Join(parts, ", "))
		}
		victims = append(victims, f.Victims()...)
	}
	slices.Sort(victims)
	fmt.Fprintf(w, "victims: %d: %s\n", len(victims), strings.Trim(fmt.Sprint(victims), "[]"))
}
