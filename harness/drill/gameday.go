package drill

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/scenarios"
)

// GameDay is a drill split into the steps people rehearsing a runbook take by hand: it is
// prepared (cluster, tenants, backups, baseline, workload) and left running; then the incident is
// injected, the team restores (by hand, or asking for a built-in strategy), and the team's restore
// is scored. One process owns a game day from start to end: the cluster, the baseline, the
// incident record and the workload's ledger never leave its memory, so nothing the team being
// scored can edit decides the score. Its control channel (control.go) carries the team's commands to it.
//
// Its methods are safe for concurrent use; they run one at a time.
type GameDay struct {
	mu sync.Mutex
	r  *run
	// scored is the outcome of the first Score; later ones return it again.
	scored *Outcome
}

// errNoIncident refuses, as invalid input, a step that needs the incident before it happened.
var errNoIncident = exitcode.With(errors.New("the game day has no incident yet: run `pgdrill incident` first"), exitcode.InvalidInput)

// StartGameDay prepares a drill up to the incident and leaves its workload running. On error the
// game day is returned too, so the caller can Teardown what was started.
func StartGameDay(ctx context.Context, cfg Config) (*GameDay, error) {
	r := newRun(cfg) // no strategy: the team restores
	r.chaos = newChaos(r, true)
	g := &GameDay{r: r}
	return g, r.prepare(ctx, r.out.Seed)
}

// Scenario is the game day's scenario.
func (g *GameDay) Scenario() *scenarios.Scenario { return g.r.cfg.Scenario }

// Cluster is the game day's cluster.
func (g *GameDay) Cluster() cluster.Cluster { return g.r.c }

// IncidentFile is what the team is told of the incident and the cluster, as a runbook would be.
func (g *GameDay) IncidentFile() (restore.IncidentFile, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.r.out.Incident == nil {
		return restore.IncidentFile{}, errNoIncident
	}
	return restore.NewIncidentFile(g.r.env(), g.r.handed(*g.r.out.Incident)), nil
}

// Page is what the on-call engineer is paged with once the incident happened: the tenants
// support reports (in a blind game day, the ticket's few) and since when.
func (g *GameDay) Page() (Page, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.r.out.Incident == nil {
		return Page{}, errNoIncident
	}
	return pageOf(g.Scenario().Metadata.ID, g.r.out.Incident.RunID, g.r.handed(*g.r.out.Incident), g.r.out.Incident.First()), nil
}

// Inject breaks the cluster as the scenario says and records the incident.
func (g *GameDay) Inject(ctx context.Context) (*incident.Record, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.r.out.Incident != nil {
		return nil, exitcode.With(errors.New("inject incident: this game day's incident already happened; score it or start another"),
			exitcode.InvalidInput)
	}
	if err := g.r.step(ctx, StepIncident, func() error { return g.r.inject(ctx) }); err != nil {
		return nil, exitcode.With(err, exitcode.HarnessError)
	}
	return g.r.out.Incident, nil
}

// Restore runs a built-in strategy against the incident, in this process: with every standby and
// export the game day's protection made, and timed on its own clock. It refuses, as invalid
// input, a strategy the game day did not protect for.
func (g *GameDay) Restore(ctx context.Context, name string) (restore.Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := g.r
	if r.out.Incident == nil {
		return restore.Result{}, errNoIncident
	}
	s, err := builtinStrategy(name, func(s scenarios.StrategyInfo) bool { return s.GameDay }, "is not a step pgdrill can run on a game day;")
	if err != nil {
		return restore.Result{}, err
	}
	if err := r.protectedFor(s); err != nil {
		return restore.Result{}, exitcode.With(err, exitcode.InvalidInput)
	}
	var res restore.Result
	err = r.step(ctx, StepRestore, func() error {
		var err error
		res, err = r.restore(ctx, s)
		return err
	})
	return res, exitcode.With(err, exitcode.ObjectivesMissed)
}

// Score stops the workload, checks the backups, verifies every tenant and scores the game day.
// Time to restore is the team's: from the incident to this call. A game day is scored once; later
// calls return the same outcome. Scoring before the incident is invalid input.
func (g *GameDay) Score(ctx context.Context) (*Outcome, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.scored != nil {
		return g.scored, nil
	}
	r := g.r
	if r.out.Incident == nil {
		return nil, errNoIncident
	}
	r.stopWorkload()
	r.out.Strategy = "by hand"
	if r.out.Restore != nil {
		r.out.Strategy = r.out.Restore.Strategy
	}
	err := r.step(ctx, StepBackups, func() error { return r.checkBackups(ctx) })
	if err == nil {
		r.chaos.healAll()
		err = r.step(ctx, StepVerify, func() error { return r.verify(ctx) })
	}
	r.finish(ctx, err)
	if ctx.Err() == nil {
		g.scored = r.out
	}
	return r.out, nil
}

// InjectFault breaks something now, as a facilitator does while the team restores (`pgdrill fault
// inject`): spec is a scenario's fault without its at or during. It returns once the fault was
// seen to take effect, or failed to; the fault heals after spec.For, by HealFault, or before the
// verification, and is timed on the game day's timeline and weighed in its score. A fault the
// scenario could not hold is refused, as invalid input, saying why.
func (g *GameDay) InjectFault(spec scenarios.Fault) (FaultOutcome, error) {
	if spec.At != "" || spec.During != "" {
		return FaultOutcome{}, exitcode.With(errors.New("inject fault: a fault injected by hand strikes now: leave out at and during"), exitcode.InvalidInput)
	}
	if err := scenarios.CheckFaultByHand(&g.r.cfg.Scenario.Spec, spec); err != nil {
		return FaultOutcome{}, exitcode.With(fmt.Errorf("inject fault: %w", err), exitcode.InvalidInput)
	}
	o, err := g.r.chaos.injectNow(spec)
	return o, exitcode.With(err, exitcode.InvalidInput)
}

// HealFault heals fault id (from 1, as Faults numbers them) now.
func (g *GameDay) HealFault(id int) (FaultOutcome, error) {
	o, err := g.r.chaos.healByHand(id)
	return o, exitcode.With(err, exitcode.InvalidInput)
}

// Faults lists every fault of the game day, the scenario's and the facilitator's, with what
// became of each.
func (g *GameDay) Faults() []FaultOutcome { return g.r.chaos.records() }

// Teardown stops the workload and destroys the cluster.
func (g *GameDay) Teardown(ctx context.Context) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.r.teardown(ctx)
}

// env is what a strategy restoring this drill's incident works with.
func (r *run) env() restore.Env {
	env := restore.Env{Cluster: r.c, Protection: r.prot, Log: r.log, Standbys: r.standbys}
	if r.chaos != nil {
		env.Watch = r.chaos
	}
	return env
}

// protectedFor says why strategy s cannot restore this drill, if it cannot: it needs standbys or
// exports the protection phase did not make.
func (r *run) protectedFor(s restore.Strategy) error {
	switch s.(type) {
	case restore.DelayedStandby:
		if len(r.standbys) == 0 {
			return fmt.Errorf("%s needs a delayed standby of every shard, and this drill keeps none (protection.standbyApplyDelay)", s.Name())
		}
	case restore.LogicalExport:
		if r.exportDir == "" {
			return fmt.Errorf("%s needs logical exports, and this drill took none (protection.logicalExportInterval)", s.Name())
		}
	}
	return nil
}
