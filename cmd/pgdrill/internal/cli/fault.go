package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/scenarios"
)

// faultKinds lists the fault kinds, for help texts.
func faultKinds() string {
	var out []string
	for _, k := range scenarios.FaultKinds() {
		out = append(out, string(k))
	}
	return strings.Join(out, ", ")
}

func (a *app) faultCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fault",
		Short: "Game day: break things while the team restores, heal them, list them",
		Long: `A facilitator's chaos on a running game day: each fault is injected by the game day's
` + "`pgdrill up --scenario`" + `, through the same lifecycle as a scenario's faults (injected, seen to take
effect, healed, seen healed, cleaned up), timed on the game day's timeline and weighed in its score:
a fault that did not take effect makes it INCONCLUSIVE. Every fault still injected is healed before
` + "`pgdrill score`" + ` verifies.`,
		Example: `  pgdrill fault inject cut --target shard-1 --for 30s   # every connection to shard-1 closed for 30 s
  pgdrill fault inject latency --latency 200ms --jitter 50ms
  pgdrill fault inject pause --target catalog --for 5s
  pgdrill fault list
  pgdrill fault heal 2`,
	}
	cmd.AddCommand(a.faultInjectCommand(), a.faultHealCommand(), a.faultListCommand())
	return cmd
}

func (a *app) faultInjectCommand() *cobra.Command {
	var f scenarios.Fault
	var forD, latency, jitter, after time.Duration
	cmd := &cobra.Command{
		Use:   "inject KIND [RUN_ID]",
		Short: "Break something now: " + faultKinds(),
		Long: `Inject a fault into the game day now, and say once it was seen to take effect. KIND and the flags are
those of a scenario's faults (see the README's Chaos section); it heals after --for, by
` + "`pgdrill fault heal`" + `, or before ` + "`pgdrill score`" + ` verifies.

Exit codes: 0 injected and seen to take effect, 2 invalid input, 3 the harness broke, 5 it was not
seen to take effect (the game day will be INCONCLUSIVE).`,
		Example: `  pgdrill fault inject pause --target shard-0 --for 10s
  pgdrill fault inject wal-missing                      # the first segment a replay from the backup needs
  pgdrill fault inject bandwidth --rate 50 -o json`,
		Args: rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Kind = scenarios.FaultKind(args[0])
			f.For, f.Latency, f.Jitter, f.After = scenarios.Duration(forD), scenarios.Duration(latency), scenarios.Duration(jitter), scenarios.Duration(after)
			c, err := a.dialGameDay(args[1:])
			if err != nil {
				return err
			}
			o, err := c.InjectFault(cmd.Context(), f)
			if err != nil {
				return err
			}
			if perr := a.print(o, func(w io.Writer) { printFaults(w, []drill.FaultOutcome{o}) }); perr != nil {
				return perr
			}
			if !o.Confirmed {
				return exitcode.With(fmt.Errorf("fault %d was not seen to take effect, so the game day will be INCONCLUSIVE: %s", o.ID, o.Problem),
					exitcode.Inconclusive)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.Target, "target", "", "what breaks: catalog, shard (the first harmed), shard-N, standby-N (default shard)")
	fl.DurationVar(&forD, "for", 0, "heal it this long after it struck (default: at `pgdrill fault heal`, or before scoring)")
	fl.DurationVar(&latency, "latency", 0, "latency: the delay of every packet, each way (default 100ms)")
	fl.DurationVar(&jitter, "jitter", 0, "latency: the jitter on that delay")
	fl.Int64Var(&f.Rate, "rate", 0, "bandwidth: the limit, in KB/s (default 100)")
	fl.DurationVar(&after, "after", 0, "reset: how long a connection carries data before it is reset")
	fl.BoolVar(&f.Immediate, "immediate", false, "restart: a crash and a start (kill -9), not a clean restart")
	fl.StringVar(&f.Segment, "segment", "", "wal-missing, wal-corrupt: the WAL segment (default: the first one after the base backup)")
	fl.StringVar(&f.File, "file", "", "backup-corrupt, backup-truncate: the file, relative to the base backup (default: its largest relation file)")
	return cmd
}

func (a *app) faultHealCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "heal ID [RUN_ID]",
		Short:   "Heal a fault now, by the id `pgdrill fault list` gives it",
		Example: "  pgdrill fault heal 1\n  pgdrill fault heal 2 r1a2b3c4d",
		Args:    rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.Atoi(args[0])
			if err != nil {
				return invalid("fault id %q is not a number: `pgdrill fault list` numbers the faults", args[0])
			}
			c, err := a.dialGameDay(args[1:])
			if err != nil {
				return err
			}
			o, err := c.HealFault(cmd.Context(), id)
			if err != nil {
				return err
			}
			return a.print(o, func(w io.Writer) { printFaults(w, []drill.FaultOutcome{o}) })
		},
	}
}

func (a *app) faultListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list [RUN_ID]",
		Short:   "List the game day's faults, the scenario's and the facilitator's, and what became of each",
		Example: "  pgdrill fault list\n  pgdrill fault list -o json",
		Args:    maxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.dialGameDay(args)
			if err != nil {
				return err
			}
			faults, err := c.Faults(cmd.Context())
			if err != nil {
				return err
			}
			return a.print(faults, func(w io.Writer) { printFaults(w, faults) })
		},
	}
}

// printFaults writes one line per fault: its id, state, timing and what it does.
func printFaults(w io.Writer, faults []drill.FaultOutcome) {
	if len(faults) == 0 {
		fmt.Fprintln(w, "no faults")
		return
	}
	for _, f := range faults {
		healed := "-"
		if f.HealedAt > 0 {
			healed = f.HealedAt.Round(time.Millisecond).String()
		}
		fmt.Fprintf(w, "%-3d %-10s injected %-9s healed %-9s %s (%s)", f.ID, f.State, f.Injected.Round(time.Millisecond), healed,
			f.Description, f.Trigger)
		if f.Problem != "" {
			fmt.Fprintf(w, ": %s", f.Problem)
		}
		fmt.Fprintln(w)
	}
}
