package drill

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/atomicfile"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
	"github.com/pgdrill/pgdrill/scenarios"
)

// GameDay is a drill split into the commands people rehearsing a runbook run by hand: `pgdrill up`
// prepares it (cluster, tenants, backups, baseline, workload) and keeps the workload running;
// `pgdrill incident` breaks the cluster; the team restores, by hand or with `pgdrill restore`;
// `pgdrill score` stops the workload and scores. What the commands share lives in a directory,
// so each command is its own process.
type GameDay struct {
	r   *run
	dir string
}

// The files of a game day's directory.
const (
	gameDayState    = "state.json"
	gameDayIncident = "incident.json"
	gameDayLedger   = "ledger.json"
	gameDayRestores = "restores.json"
)

// gameDayFile is what `pgdrill up` leaves for the other commands.
type gameDayFile struct {
	// Scenario is the scenario's id or its file's absolute path, for scenarios.Lookup.
	Scenario      string              `json:"scenario"`
	Seed          uint64              `json:"seed"`
	Started       time.Time           `json:"started"`
	WorkloadStart time.Time           `json:"workload_start"`
	Cluster       cluster.Description `json:"cluster"`
	Protection    backup.Protection   `json:"protection"`
	Victims       []fixtures.Tenant   `json:"victims"`
	Before        *truth.Snapshot     `json:"before"`
	Baseline      []baselineTable     `json:"baseline"`
	Events        []Event             `json:"events"`
}

// baselineTable is one victim table's rows in a game day's file.
type baselineTable struct {
	truth.TenantTable
	Rows []truth.RowHash `json:"rows"`
}

// StartGameDay prepares a drill up to the incident and leaves its workload running; the game
// day's files go to root/RUN_ID. On error the game day is returned too, so the caller can
// Teardown what was started.
func StartGameDay(ctx context.Context, cfg Config, root string) (*GameDay, error) {
	r := newRun(cfg)
	g := &GameDay{r: r}
	err := r.prepare(ctx, r.out.Seed)
	if r.c != nil {
		g.dir = filepath.Join(root, r.c.RunID())
	}
	if err != nil {
		return g, err
	}
	return g, g.save()
}

// Scenario is the game day's scenario.
func (g *GameDay) Scenario() *scenarios.Scenario { return g.r.cfg.Scenario }

// Remove deletes the game day's files.
func (g *GameDay) Remove() error {
	if g.dir == "" {
		return nil
	}
	if err := os.RemoveAll(g.dir); err != nil {
		return fmt.Errorf("remove game day files: %w", err)
	}
	return nil
}

// HasLedger reports whether the game day in dir has stopped its workload and written its ledger.
func HasLedger(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, gameDayLedger))
	return err == nil
}

// Cluster is the game day's cluster.
func (g *GameDay) Cluster() cluster.Cluster { return g.r.c }

// Outcome is what the game day has found so far.
func (g *GameDay) Outcome() *Outcome { return g.r.out }

// StopWorkload stops the writers and writes their ledger for `pgdrill score`.
func (g *GameDay) StopWorkload() error {
	g.r.stopWorkload()
	return writeJSON(filepath.Join(g.dir, gameDayLedger), g.r.ledger.Entries())
}

// Teardown stops the workload and destroys the cluster.
func (g *GameDay) Teardown(ctx context.Context) { g.r.teardown(ctx) }

func (g *GameDay) save() error {
	r := g.r
	f := gameDayFile{Scenario: scenarioRef(r.cfg.Scenario), Seed: r.out.Seed, Started: r.start,
		WorkloadStart: r.workloadStart, Cluster: cluster.Describe(r.c), Protection: r.prot, Victims: r.victims,
		Before: r.before, Events: r.out.Events}
	for k, rows := range r.base.rows {
		f.Baseline = append(f.Baseline, baselineTable{TenantTable: k, Rows: rows})
	}
	if err := os.MkdirAll(g.dir, 0o700); err != nil {
		return fmt.Errorf("create game day directory: %w", err)
	}
	return writeJSON(filepath.Join(g.dir, gameDayState), f)
}

// scenarioRef is how a later command finds the scenario again.
func scenarioRef(sc *scenarios.Scenario) string {
	if sc.File != "" {
		if abs, err := filepath.Abs(sc.File); err == nil {
			if _, err := os.Stat(abs); err == nil {
				return abs
			}
		}
	}
	return sc.Metadata.ID
}

// LoadGameDay reads a game day's directory, for the commands after `pgdrill up`. c is the running
// cluster, reached from this process (see cluster.Remote).
func LoadGameDay(dir string, c func(cluster.Description) cluster.Cluster, log *slog.Logger) (*GameDay, error) {
	var f gameDayFile
	if err := readJSON(filepath.Join(dir, gameDayState), &f); err != nil {
		return nil, err
	}
	sc, err := scenarios.Lookup(f.Scenario)
	if err != nil {
		return nil, fmt.Errorf("load game day: %w", err)
	}
	r := newRun(Config{Scenario: sc, Seed: f.Seed, Log: log})
	r.start, r.workloadStart = f.Started, f.WorkloadStart
	r.out.Started, r.out.RunID, r.out.Provider = f.Started.UTC(), f.Cluster.RunID, f.Cluster.Provider
	r.out.Events = f.Events
	r.c = c(f.Cluster)
	r.prot, r.victims, r.before = f.Protection, f.Victims, f.Before
	r.base = baseline{rows: map[truth.TenantTable][]truth.RowHash{}}
	for _, t := range f.Baseline {
		r.base.rows[t.TenantTable] = t.Rows
	}
	plan, err := fixtures.NewPlan(fixtures.PlanSpec{Seed: f.Seed, Tenants: sc.Spec.Dataset.Tenants,
		Rows: sc.Spec.Dataset.Rows, Shards: len(f.Cluster.Shards), Layout: sc.Spec.Cluster.Layout})
	if err != nil {
		return nil, fmt.Errorf("load game day: %w", err)
	}
	r.plan, r.src = plan, dataset.Source(r.c, plan.Spec.Layout)
	g := &GameDay{r: r, dir: dir}
	var rec incident.Record
	switch err := readJSON(filepath.Join(dir, gameDayIncident), &rec); {
	case err == nil:
		r.out.Incident = &rec
		r.victims = harmedOnly(r.victims, rec)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	return g, nil
}

// Protection is the game day's base backups.
func (g *GameDay) Protection() backup.Protection { return g.r.prot }

// Incident returns the recorded incident, nil before `pgdrill incident`.
func (g *GameDay) Incident() *incident.Record { return g.r.out.Incident }

// Inject breaks the cluster as the scenario says and records the incident for the other commands.
func (g *GameDay) Inject(ctx context.Context) (*incident.Record, error) {
	if g.r.out.Incident != nil {
		return nil, exitcode.With(errors.New("inject incident: this game day's incident already happened; score it or start another"),
			exitcode.InvalidInput)
	}
	if err := g.r.step(ctx, StepIncident, func() error { return g.r.inject(ctx) }); err != nil {
		return nil, err
	}
	if err := writeJSON(filepath.Join(g.dir, gameDayIncident), g.r.out.Incident); err != nil {
		return nil, err
	}
	return g.r.out.Incident, g.save()
}

// Score reads the ledger `pgdrill up` wrote when its workload stopped, verifies every tenant and
// scores the game day. Time to restore is the team's, from the incident to this call; the
// phases of any `pgdrill restore` they ran are on the timeline as the machine's share of it.
func (g *GameDay) Score(ctx context.Context) *Outcome {
	r := g.r
	if r.out.Incident == nil {
		r.finish(ctx, errors.New("score: no incident yet; run `pgdrill incident` first"))
		return r.out
	}
	var entries []workload.Entry
	if err := readJSON(filepath.Join(g.dir, gameDayLedger), &entries); err != nil {
		r.finish(ctx, fmt.Errorf("score: read the workload's ledger: %w", err))
		return r.out
	}
	r.ledger = workload.LedgerOf(entries)
	var restores []restore.Result
	switch err := readJSON(filepath.Join(g.dir, gameDayRestores), &restores); {
	case err == nil:
		for _, res := range restores {
			r.addRestore(res)
		}
	case !errors.Is(err, os.ErrNotExist):
		r.finish(ctx, err)
		return r.out
	}
	r.out.Strategy = "by hand"
	if r.out.Restore != nil {
		r.out.Strategy = r.out.Restore.Strategy
	}
	err := r.step(ctx, StepVerify, func() error { return r.verify(ctx) })
	r.finish(ctx, err)
	return r.out
}

// RecordRestore adds a restore's result to the game day's, so that its phases (the machine's
// time, apart from the team's) are on the scored timeline.
func (g *GameDay) RecordRestore(res restore.Result) error {
	var restores []restore.Result
	if err := readJSON(filepath.Join(g.dir, gameDayRestores), &restores); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return writeJSON(filepath.Join(g.dir, gameDayRestores), append(restores, res))
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return atomicfile.Write(path, data, 0o600)
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}
