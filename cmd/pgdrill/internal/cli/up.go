package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/scenarios"
)

// teardownTimeout bounds the teardown after a run ends, however it ended.
const teardownTimeout = 2 * time.Minute

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
			spec := cluster.Spec{Shards: shards, Durable: durable, Settings: set}
			if err := spec.Validate(); err != nil {
				return exitcode.With(err, exitcode.InvalidInput)
			}
			if stayFor < 0 || (detach && stayFor != 0) {
				return invalid("--for must be positive and cannot be combined with --detach")
			}
			plan, err := data.plan(shards)
			if err != nil {
				return err
			}
			return a.up(cmd.Context(), spec, plan, detach, stayFor)
		},
	}
	f := cmd.Flags()
	f.IntVar(&shards, "shards", 4, fmt.Sprintf("number of shard servers (1..%d)", cluster.MaxShards))
	f.BoolVar(&durable, "durable", false, "keep fsync, synchronous_commit and full_page_writes on (crash scenarios)")
	f.BoolVar(&detach, "detach", false, "return after printing and leave the cluster running until `pgdrill down`")
	f.DurationVar(&stayFor, "for", 0, "tear down after this long (default: until Ctrl-C)")
	f.StringArrayVar(&settings, "set", nil, "extra server setting name=value for every server (repeatable)")
	data.register(f)
	f.StringVar(&scenario, "scenario", "", "start a game day from this scenario (id or file): cluster, tenants, backups and workload as it says")
	return cmd
}

func (a *app) up(ctx context.Context, spec cluster.Spec, plan *fixtures.Plan, detach bool, stayFor time.Duration) (err error) {
	p, err := a.localProvider(ctx)
	if err != nil {
		return err
	}
	c, err := p.Create(ctx, spec)
	if c != nil {
		// Registered before err is checked: a partial cluster is torn down too, and so is a
		// whole one on panic, signal or error — unless it was detached on purpose.
		detached := false
		defer func() {
			if detached {
				return
			}
			tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
			defer cancel()
			if derr := c.Destroy(tctx); derr != nil {
				a.log.Error("teardown failed; run `pgdrill down` to retry", "run_id", c.RunID(), "err", derr)
				if err == nil {
					err = exitcode.With(derr, exitcode.HarnessError)
				}
			}
		}()
		if err == nil && plan != nil {
			err = a.fill(ctx, c, plan)
		}
		if err == nil && detach {
			if err = c.Detach(); err == nil {
				detached = true
			}
		}
	}
	if err != nil {
		return exitcode.With(err, exitcode.HarnessError)
	}
	out := upOutput{Description: cluster.Describe(c)}
	if plan != nil {
		out.Dataset = &plan.Spec
	}
	if err := a.print(out, func(w io.Writer) { printDescription(w, out, detach) }); err != nil {
		return err
	}
	if detach {
		return nil
	}
	a.log.Info("cluster is up; Ctrl-C tears it down", "run_id", c.RunID())
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

// upOutput is what `pgdrill up` prints: the cluster, and the dataset it was filled with.
type upOutput struct {
	cluster.Description
	Dataset *fixtures.PlanSpec `json:"dataset,omitempty"`
}

// fill loads the plan into the cluster with a progress bar.
func (a *app) fill(ctx context.Context, c cluster.Cluster, plan *fixtures.Plan) error {
	update, done := a.fillProgress(plan.Spec.Rows)
	a.log.Info("filling", "tenants", plan.Spec.Tenants, "rows", plan.Spec.Rows, "layout", plan.Spec.Layout, "seed", plan.Spec.Seed)
	res, err := fixtures.Fill(ctx, plan, dataset.Target(c), fixtures.FillOptions{OnProgress: update})
	done()
	if err != nil {
		return fmt.Errorf("fill cluster %s: %w", c.RunID(), err)
	}
	a.log.Info("filled", "rows", res.Rows, "elapsed", res.Elapsed.Round(time.Millisecond),
		"rows_per_s", int(float64(res.Rows)/res.Elapsed.Seconds()))
	return nil
}

func printDescription(w io.Writer, out upOutput, detached bool) {
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
