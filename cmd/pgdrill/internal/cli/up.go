package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/scenarios"
)

func (a *app) upCommand() *cobra.Command {
	var (
		shards   int
		durable  bool
		detach   bool
		stayFor  time.Duration
		settings []string
		data     datasetFlags
		scenario string
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Start a throwaway sharded cluster and print its connection strings",
		Long: `Start a catalog server (the tenant directory) and N shard servers, each a real Postgres server
with WAL archiving on, print their connection strings, and stay up until Ctrl-C (or --for runs
out), then remove everything. With --detach, return at once and leave the cluster running until
` + "`pgdrill down`" + `.

Every database pgdrill creates carries a pgdrill_meta marker with the run id; destructive
operations refuse any database without it.`,
		Example: `  pgdrill up                         # catalog + 4 shards, 200 tenants, 1M rows, until Ctrl-C
  pgdrill up --tenants 200 --rows 1000000 --layout shared --seed 42
  pgdrill up --tenants 0             # empty servers, no tenants
  pgdrill up --shards 8 --for 10m    # tear down after 10 minutes
  pgdrill up --detach -o json        # run id and DSNs as JSON; keeps running
  pgdrill up --durable               # fsync on, for crash scenarios
  pgdrill up --set shared_buffers=256MB
  pgdrill up --scenario wrong-id-deletion     # a game day: then pgdrill incident, restore, score`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if scenario != "" {
				if detach {
					return invalid("--scenario runs the game day's workload in this process: it cannot be combined with --detach")
				}
				sc, err := scenarios.Lookup(scenario)
				if err != nil {
					return exitcode.With(err, exitcode.InvalidInput)
				}
				return a.gameDay(cmd.Context(), sc, data.seed)
			}
			set, err := parseSettings(settings)
			if err != nil {
				return err
			}
			if stayFor < 0 || (detach && stayFor != 0) {
				return invalid("--for must be positive and cannot be combined with --detach")
			}
			spec := drill.UpSpec{Shards: shards, Durable: durable, Settings: set, Dataset: data.spec(), Detach: detach}
			return a.up(cmd.Context(), spec, stayFor)
		},
	}
	f := cmd.Flags()
	f.IntVar(&shards, "shards", 4, fmt.Sprintf("number of shard servers (1..%d)", drill.MaxShards))
	f.BoolVar(&durable, "durable", false, "keep fsync, synchronous_commit and full_page_writes on (crash scenarios)")
	f.BoolVar(&detach, "detach", false, "return after printing and leave the cluster running until `pgdrill down`")
	f.DurationVar(&stayFor, "for", 0, "tear down after this long (default: until Ctrl-C)")
	f.StringArrayVar(&settings, "set", nil, "extra server setting name=value for every server (repeatable)")
	data.register(f)
	f.StringVar(&scenario, "scenario", "", "start a game day from this scenario (id or file): cluster, tenants, backups and workload as it says")
	return cmd
}

func (a *app) up(ctx context.Context, spec drill.UpSpec, stayFor time.Duration) error {
	var done func()
	if d := spec.Dataset; d != nil && d.Tenants > 0 {
		spec.OnFill, done = a.fillProgress(d.Rows)
	}
	u, err := a.host.Up(ctx, spec)
	if done != nil {
		done()
	}
	if err != nil {
		return err
	}
	if !spec.Detach {
		// Registered before anything else can fail: the cluster goes on panic, signal or error.
		defer func() {
			if derr := u.Destroy(ctx); derr != nil {
				a.log.Error("teardown failed", "run_id", u.RunID(), "err", derr)
			}
		}()
	}
	if err := a.print(u.Info, func(w io.Writer) { printDescription(w, u.Info, spec.Detach) }); err != nil {
		return err
	}
	if spec.Detach {
		return nil
	}
	a.log.Info("cluster is up; Ctrl-C tears it down", "run_id", u.RunID())
	var timeout <-chan time.Time
	if stayFor > 0 {
		timeout = time.After(stayFor)
	}
	select {
	case <-ctx.Done(): // Ctrl-C is how `up` is meant to end: not an error
	case <-timeout:
	}
	return nil
}

func printDescription(w io.Writer, out drill.ClusterInfo, detached bool) {
	d := out.Description
	fmt.Fprintf(w, "run id:   %s (%s provider)\n", d.RunID, d.Provider)
	fmt.Fprintf(w, "catalog:  %s\n", d.Catalog.DSN)
	for _, s := range d.Shards {
		fmt.Fprintf(w, "shard %-2d  %s\n", s.Index, s.DSN)
	}
	if ds := out.Dataset; ds != nil {
		fmt.Fprintf(w, "dataset:  %d tenants, %d rows, %s layout, seed %d\n", ds.Tenants, ds.Rows, ds.Layout, ds.Seed)
	}
	if detached {
		fmt.Fprintf(w, "left running; remove with: pgdrill down %s\n", d.RunID)
	}
}

// noArgs rejects positional arguments as invalid input (exit code 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return invalid("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}
