// Package drill runs one drill end to end and owns its timeline: provision a cluster, fill it
// with synthetic tenants, protect it, start a workload that records every acknowledged write,
// break it the way the scenario says, detect, restore, verify every tenant against what its own
// writes say it must hold, and score the result against the scenario's objectives.
//
// Every step is an event on one timeline of monotonic offsets from the drill's start; RTO, RPO and
// the phase breakdown are computed from those events and from the data, never from guesses.
package drill

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/costmodel"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
	"github.com/pgdrill/pgdrill/scenarios"
)

// Config is one drill to run.
type Config struct {
	Scenario *scenarios.Scenario
	Provider cluster.Provider
	// Restore, when set, restores with another strategy than the scenario's (a built-in, or a
	// runbook). The scenario is equipped with the protection that strategy restores from when
	// it lacks it (the outcome's Notes say so), and the drill is refused, as invalid input,
	// when the strategy still cannot restore it: see scenarios.WithStrategy.
	Restore *scenarios.Restore
	// Seed overrides the scenario's seed when not 0.
	Seed uint64
	Log  *slog.Logger
	// OnStep, when set, is told the name of each step as it starts (the CLI shows progress).
	OnStep func(step string)
	// RunbookOutput, when set, gets a runbook restore's stdout and stderr as they come, each line
	// prefixed (the CLI's stderr), so a team sees where its runbook is; the whole of it is in
	// the outcome too (Restore.Output), and in every report.
	RunbookOutput io.Writer
	// RunbookEnv is more environment for a runbook restore ("NAME=value"), after pgdrill's own:
	// what the pgdrill commands it runs need to reach this drill (Host.RunbookEnv).
	RunbookEnv []string
	// Curves, when set, are cost curves measured on this machine (pgdrill measure): the outcome
	// then projects the restore to the scenario's production size (spec.projection).
	Curves *costmodel.Curves
}

// The drill's own steps, as they appear on the timeline.
const (
	StepProvision = "provision"
	StepFill      = "fill"
	StepProtect   = "protect"
	StepBaseline  = "baseline"
	StepWorkload  = "workload"
	StepIncident  = "incident"
	StepDetect    = "detect"
	StepBackups   = "backups"
	StepRestore   = "restore"
	StepVerify    = "verify"
	StepTeardown  = "teardown"
)

// errRestore marks a failure of the restore under test, as opposed to the harness: a FAIL, not
// an ERROR.
var errRestore = errors.New("restore failed")

// run is the state of one drill while it runs.
type run struct {
	cfg   Config
	log   *slog.Logger
	out   *Outcome
	start time.Time
	c     cluster.Cluster
	plan  *fixtures.Plan
	// harmed is the column an incident that harms one column harms (see harmedColumn).
	harmed  columnTarget
	prot    backup.Protection
	src     truth.Source
	base    score.Baseline
	runner  *workload.Runner
	ledger  *workload.Ledger
	victims []fixtures.Tenant
	// findings are what the verification found; nil until it ran.
	findings *score.Findings
	// clock is the drill's own account of the incident, its detection and the restore's end.
	clock score.Clock
	// strategy is the restore strategy the drill runs; nil on a game day (the team restores).
	strategy restore.Strategy
	// standbys are the delayed standbys the protection phase started, index i for shard i.
	standbys []cluster.Standby
	// exportDir holds the logical exports the protection phase took; removed at teardown.
	exportDir string
	// chaos injects the scenario's faults; nil when it has none.
	chaos *chaos
}

// Run runs the drill and returns its outcome, whose Verdict says how it went. Everything it
// starts is torn down before it returns, whatever happened.
func Run(ctx context.Context, cfg Config) *Outcome {
	var notes []string
	var err error
	if cfg.Restore != nil {
		given := cfg.Scenario
		if cfg.Scenario, notes, err = scenarios.WithStrategy(given, *cfg.Restore); err != nil {
			cfg.Scenario = given
			r := newRun(cfg)
			r.finish(ctx, exitcode.With(fmt.Errorf("choose strategy: %w", err), exitcode.InvalidInput))
			return r.out
		}
	}
	r := newRun(cfg)
	r.out.Notes = notes
	for _, n := range notes {
		r.log.Info("scenario changed for the strategy", "note", n)
	}
	strategy, err := StrategyOf(cfg.Scenario)
	if err != nil {
		r.finish(ctx, err)
		return r.out
	}
	r.out.Strategy = strategy.Name()
	r.strategy = strategy
	r.log.Info("drill starting", "scenario", cfg.Scenario.Metadata.ID, "seed", r.out.Seed, "strategy", strategy.Name())
	err = r.execute(ctx, strategy, r.out.Seed)
	r.finish(ctx, err)
	if err := r.base.Close(); err != nil {
		r.log.Warn("could not release the baseline's rows", "err", err)
	}
	return r.out
}

// StrategyOf returns the restore strategy a scenario names: a built-in, or its runbook.
func StrategyOf(sc *scenarios.Scenario) (restore.Strategy, error) {
	if rb := sc.Spec.Restore.Runbook; sc.Spec.Restore.Strategy == scenarios.RunbookStrategy && rb != nil {
		return restore.Runbook{Command: rb.Command, Timeout: rb.Timeout.Std()}, nil
	}
	s, err := restore.Lookup(string(sc.Spec.Restore.Strategy))
	if err != nil {
		return nil, fmt.Errorf("choose strategy: %w", err)
	}
	return s, nil
}

// newRun starts the state and outcome of a drill of cfg.
func newRun(cfg Config) *run {
	sc := cfg.Scenario
	r := &run{cfg: cfg, log: cfg.Log, start: time.Now()}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.chaos = newChaos(r, false)
	seed := sc.Spec.Seed
	if cfg.Seed != 0 {
		seed = cfg.Seed
	}
	r.out = &Outcome{Scenario: sc, ScenarioID: sc.Metadata.ID, Seed: seed, Layout: sc.Spec.Cluster.Layout,
		Shards: sc.Spec.Cluster.Shards, Tenants: sc.Spec.Dataset.Tenants, Rows: sc.Spec.Dataset.Rows,
		Started: r.start.UTC(), Knowledge: cmp.Or(sc.Spec.Detection.Knowledge, scenarios.KnowledgeTold)}
	if cfg.Provider != nil {
		r.out.Provider = cfg.Provider.Name()
	}
	return r
}

// execute runs the steps in order; the first error ends the drill.
func (r *run) execute(ctx context.Context, strategy restore.Strategy, seed uint64) error {
	defer r.teardown(ctx)
	if err := r.prepare(ctx, seed); err != nil {
		return err
	}
	if err := sleep(ctx, r.cfg.Scenario.Spec.Incident.After.Std()); err != nil {
		return err
	}
	if err := r.step(ctx, StepIncident, func() error { return r.inject(ctx) }); err != nil {
		return err
	}
	if err := r.step(ctx, StepDetect, func() error { return r.detect(ctx) }); err != nil {
		return err
	}
	if err := r.step(ctx, StepBackups, func() error { return r.checkBackups(ctx) }); err != nil {
		return err
	}
	if r.backupsBroken() && restoresFromBackups(strategy) {
		r.log.Warn("not restoring: the backups the strategy restores from are broken", "strategy", strategy.Name())
		return nil
	}
	if err := r.step(ctx, StepRestore, func() error {
		_, err := r.restore(ctx, strategy)
		return err
	}); err != nil {
		return err
	}
	r.chaos.healAll()
	return r.step(ctx, StepVerify, func() error {
		r.stopWorkload()
		return r.verify(ctx)
	})
}

// prepare provisions the cluster, fills it, protects it, takes the baseline and starts the
// workload: everything before the incident.
func (r *run) prepare(ctx context.Context, seed uint64) error {
	sc := r.cfg.Scenario.Spec
	if err := r.step(ctx, StepProvision, func() error {
		c, err := r.cfg.Provider.Create(ctx, cluster.Spec{Shards: sc.Cluster.Shards, Durable: sc.Cluster.Durable, Engine: r.engine(),
			SidecarDisks: r.cfg.Scenario.HasFault(scenarios.FaultDiskFull)})
		r.c = r.chaos.wrap(c) // set before err is checked: teardown destroys a partial cluster too
		if err != nil {
			return err
		}
		r.out.RunID = c.RunID()
		return installTools(ctx, c)
	}); err != nil {
		return err
	}
	if err := r.step(ctx, StepFill, func() error {
		schema, err := scenarioSchema(r.cfg.Scenario)
		if err != nil {
			return err
		}
		r.plan, err = dataset.Plan(ctx, r.c, schema, fixtures.PlanSpec{Seed: seed, Tenants: sc.Dataset.Tenants,
			Rows: sc.Dataset.Rows, Layout: sc.Cluster.Layout})
		if err == nil {
			r.harmed, err = harmedColumn(sc.Incident, r.plan.Model)
		}
		if err == nil {
			err = checkSchemaFits(sc, r.plan.Model)
		}
		if err != nil {
			if errors.Is(err, dataset.ErrUnusableSchema) {
				err = exitcode.With(err, exitcode.InvalidInput)
			}
			return err
		}
		r.src = dataset.Source(r.c, sc.Cluster.Layout, r.plan.Model)
		r.out.SchemaName = r.plan.Model.Name
		if _, err := fixtures.Fill(ctx, r.plan, dataset.Target(r.c), fixtures.FillOptions{}); err != nil {
			return fmt.Errorf("fill cluster %s: %w", r.c.RunID(), err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := r.step(ctx, StepProtect, func() error { return r.protect(ctx) }); err != nil {
		return err
	}
	r.victims = chooseVictims(r.plan, sc.Incident, seed)
	if err := r.step(ctx, StepBaseline, func() error {
		var err error
		r.base, err = score.TakeBaseline(ctx, r.src, r.victims)
		return err
	}); err != nil {
		return err
	}
	if err := r.step(ctx, StepWorkload, func() error {
		var err error
		if sc.Workload.Writers == 0 {
			return nil // the scenario asks for no workload
		}
		r.runner, err = workload.Start(ctx, r.c, r.plan, workload.Config{Rate: sc.Workload.Rate, Writers: sc.Workload.Writers, Seed: seed,
			Mix: workload.Mix{Insert: sc.Workload.Mix.Insert, Update: sc.Workload.Mix.Update, Delete: sc.Workload.Mix.Delete}})
		return err
	}); err != nil {
		return err
	}
	return nil
}

// restore runs the strategy against the recorded incident (a blind drill's: as the restore
// located it first) and puts its phases on the timeline.
// A failure of the strategy is the restore's (a FAIL), unless the drill was interrupted. What
// the strategy reports of itself (rows written, conflicts) is kept as reported; the judge never
// reads it.
func (r *run) restore(ctx context.Context, strategy restore.Strategy) (restore.Result, error) {
	rec := *r.out.Incident
	switch _, runbook := strategy.(restore.Runbook); {
	case r.blind() && runbook:
		// The team's runbook is handed the ticket: finding the harm is its work.
		rec = r.handed(rec)
		r.out.Notes = append(r.out.Notes, fmt.Sprintf("blind: the runbook was handed a ticket naming %d of the %d victims, since %s",
			len(rec.Ticket.Tenants), len(r.out.Incident.Affected), rec.Ticket.From.Format(time.TimeOnly)))
	case r.blind():
		var err error
		if rec, err = r.locate(ctx); err != nil {
			return restore.Result{Strategy: strategy.Name()}, fmt.Errorf("%w: %w", errRestore, err)
		}
	}
	res, err := r.equip(strategy).Restore(ctx, r.env(), rec)
	r.addRestore(res)
	r.measureWAL()
	if err != nil && ctx.Err() == nil {
		return res, fmt.Errorf("%w: %w", errRestore, err)
	}
	return res, err
}

// addRestore keeps a restore's result and puts its phases on the timeline. A game day may run
// several restores; their tenants and phases add up.
func (r *run) addRestore(res restore.Result) {
	if r.out.Restore == nil {
		r.out.Restore = &restore.Result{Strategy: res.Strategy}
	}
	r.out.Restore.Phases = append(r.out.Restore.Phases, res.Phases...)
	r.out.Restore.Tenants = append(r.out.Restore.Tenants, res.Tenants...)
	r.out.Restore.Output += res.Output
	r.out.Restore.Retries = append(r.out.Restore.Retries, res.Retries...)
	for _, rt := range res.Retries {
		r.out.Events = append(r.out.Events, Event{Name: StepRestore + ".retry", Shard: rt.Shard, Start: rt.At.Sub(r.start),
			End: rt.At.Add(rt.Wait).Sub(r.start), At: rt.At.UTC(), Error: rt.Cause})
	}
	for _, p := range res.Phases {
		r.out.Events = append(r.out.Events, Event{Name: StepRestore + "." + p.Name, Shard: p.Shard,
			Start: p.Start.Sub(r.start), End: p.End.Sub(r.start), At: p.Start.UTC()})
		r.clock.Phases = append(r.clock.Phases, score.Phase{Name: p.Name, Shard: p.Shard, Start: p.Start, End: p.End})
	}
}

// stopWorkload stops the writers and keeps their ledger; a drill without a workload has an empty
// one.
func (r *run) stopWorkload() {
	if r.runner == nil {
		r.ledger = workload.LedgerOf(nil)
		return
	}
	r.ledger = r.runner.Stop()
}

// step runs f as a timeline event.
func (r *run) step(ctx context.Context, name string, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.cfg.OnStep != nil {
		r.cfg.OnStep(name)
	}
	// Taken before the faults attached to the step start their clocks: a fault set for the step
	// + 250ms strikes at least 250ms after the start the timeline shows.
	start := time.Now()
	r.chaos.beganStep(name)
	err := f()
	r.chaos.ended(name, -1)
	e := Event{Name: name, Shard: -1, Start: start.Sub(r.start), End: time.Since(r.start), At: start.UTC()}
	if err != nil {
		e.Error = err.Error()
		err = fmt.Errorf("%s: %w", name, err)
	}
	r.out.Events = append(r.out.Events, e)
	r.log.Info("step", "name", name, "took", time.Duration(e.End-e.Start).Round(time.Millisecond), "err", e.Error)
	return err
}

// teardown stops the workload and destroys the cluster, whatever happened.
func (r *run) teardown(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	if r.ledger == nil {
		r.stopWorkload()
	}
	for _, err := range r.chaos.cleanup() {
		r.out.Problems = append(r.out.Problems, "a fault was not cleaned up: "+err.Error())
	}
	if r.c == nil {
		return
	}
	start := time.Now()
	tctx, cancel := context.WithTimeout(ctx, teardownTimeout)
	defer cancel()
	e := Event{Name: StepTeardown, Shard: -1, Start: start.Sub(r.start), At: start.UTC()}
	if err := r.c.Destroy(tctx); err != nil {
		e.Error = err.Error()
		r.out.Problems = append(r.out.Problems, "teardown failed; run `pgdrill down "+r.c.RunID()+"`: "+err.Error())
	}
	if err := r.removeExports(); err != nil {
		r.out.Problems = append(r.out.Problems, err.Error())
	}
	e.End = time.Since(r.start)
	r.out.Events = append(r.out.Events, e)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// scenarioSchema reads the schema file the scenario names (relative to the scenario file), or
// returns the built-in world's when it names none.
func scenarioSchema(s *scenarios.Scenario) (dataset.Schema, error) {
	ds := s.Spec.Dataset
	out := dataset.Schema{Options: ds.ReadOptions(), Overrides: ds.Columns}
	path := ds.SchemaPath(s.File)
	if path == "" {
		return out, nil
	}
	ddl, err := os.ReadFile(path)
	if err != nil {
		return out, exitcode.With(fmt.Errorf("read schema of scenario %s: %w", s.Metadata.ID, err), exitcode.InvalidInput)
	}
	out.DDL = string(ddl)
	return out, nil
}
