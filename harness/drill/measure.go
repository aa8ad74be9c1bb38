package drill

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/pgdrill/pgdrill/harness/costmodel"
	"github.com/pgdrill/pgdrill/harness/exitcode"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

// Curves are cost curves measured on one machine (costmodel.Curves): what Measure fits and
// Config.Curves projects from.
type Curves = costmodel.Curves

// Measurement is what Measure found: the curves fitted, and the projection when the scenario
// names a production size.
type Measurement struct {
	Scenario   string                `json:"scenario"`
	Curves     Curves                `json:"curves"`
	Drills     []string              `json:"drills"`
	Projection *costmodel.Projection `json:"projection,omitempty"`
}

// MeasureConfig is one measurement of a scenario's cost curves.
type MeasureConfig struct {
	// Scenario is a built-in id or a scenario file; its restore must be pitr-sidecar.
	Scenario string
	// Sizes are the shares of one of the scenario's shards measured (tenants and rows divided by
	// its shards, times the size).
	Sizes    []float64
	Provider Provider
	Log      *slog.Logger
	// Drilled, when set, is told each drill's outcome as it ends (the CLI writes its reports),
	// and returns where they are.
	Drilled func(*Outcome) (string, error)
}

// Measure runs the scenario on one shard at each size, told the harm so that only the restore
// is timed, two drills per size (all its victims after a second of its workload; a third of
// them after four seconds at ten times its write rate, so that victims and WAL vary apart), and
// fits each restore phase's time to the work it did (Outcome.CostPoints).
func Measure(ctx context.Context, cfg MeasureConfig) (Measurement, error) {
	base, err := scenarios.Lookup(cfg.Scenario)
	if err != nil {
		return Measurement{}, exitcode.With(err, exitcode.InvalidInput)
	}
	m := Measurement{Scenario: base.Metadata.ID}
	if len(cfg.Sizes) == 0 {
		return m, exitcode.With(fmt.Errorf("measure %s: give at least one size", m.Scenario), exitcode.InvalidInput)
	}
	for _, s := range cfg.Sizes {
		if !(s > 0) || math.IsInf(s, 0) {
			return m, exitcode.With(fmt.Errorf("measure %s: %v is not a size above 0", m.Scenario, s), exitcode.InvalidInput)
		}
	}
	if base.Spec.Restore.Strategy != scenarios.PITRSidecar {
		return m, exitcode.With(fmt.Errorf("measure fits the pitr-sidecar's phases (provision, replay, merge); scenario %s restores with %s",
			m.Scenario, base.Spec.Restore.Strategy), exitcode.InvalidInput)
	}
	points := map[string][]costmodel.Point{}
	for _, size := range cfg.Sizes {
		for _, fewer := range []bool{false, true} {
			sc, err := sweepPoint(cfg.Scenario, size, fewer)
			if err != nil {
				return m, exitcode.With(err, exitcode.InvalidInput)
			}
			cfg.Log.Info("measuring", "scenario", sc.Metadata.ID, "tenants", sc.Spec.Dataset.Tenants, "rows", sc.Spec.Dataset.Rows,
				"fraction", sc.Spec.Incident.Fraction)
			out := Run(ctx, Config{Scenario: sc, Provider: cfg.Provider, Log: cfg.Log})
			if cfg.Drilled != nil {
				where, err := cfg.Drilled(out)
				if err != nil {
					return m, err
				}
				m.Drills = append(m.Drills, where)
			}
			if ctx.Err() != nil {
				return m, exitcode.With(fmt.Errorf("measure %s: interrupted", m.Scenario), exitcode.Aborted)
			}
			if out.Verdict == score.Error || out.Verdict == score.Aborted || out.Restore == nil {
				return m, exitcode.With(fmt.Errorf("measure %s: the drill of %d tenants and %d rows did not restore: %s: %s",
					m.Scenario, sc.Spec.Dataset.Tenants, sc.Spec.Dataset.Rows, out.Verdict, out.Reason), exitcode.HarnessError)
			}
			for phase, ps := range out.CostPoints() {
				points[phase] = append(points[phase], ps...)
			}
		}
	}
	if m.Curves, err = costmodel.FitAll(machine(cfg.Provider.Name()), points); err != nil {
		return m, exitcode.With(fmt.Errorf("measure %s: %w", m.Scenario, err), exitcode.HarnessError)
	}
	if p := base.Spec.Projection; p != nil {
		proj, err := costmodel.Project(m.Curves, p.Production())
		if err != nil {
			return m, exitcode.With(fmt.Errorf("measure %s: %w", m.Scenario, err), exitcode.InvalidInput)
		}
		m.Projection = &proj
	}
	return m, nil
}

// sweepPoint is one drill of a measurement: the scenario shrunk to one shard of the size given,
// told the harm, with victims and WAL varied apart.
func sweepPoint(id string, size float64, fewer bool) (*scenarios.Scenario, error) {
	sc, err := scenarios.Lookup(id)
	if err != nil {
		return nil, err
	}
	sp := &sc.Spec
	shards := float64(sp.Cluster.Shards)
	sp.Cluster.Shards = 1
	sp.Dataset.Tenants = max(8, int(math.Round(float64(sp.Dataset.Tenants)/shards*size)))
	sp.Dataset.Rows = max(int64(sp.Dataset.Tenants)*64, int64(math.Round(float64(sp.Dataset.Rows)/shards*size)))
	sp.Detection.Knowledge = scenarios.KnowledgeTold
	sp.Detection.Delay = scenarios.Duration(200 * time.Millisecond)
	sp.Incident.After = scenarios.Duration(time.Second)
	if fewer {
		sp.Incident.Fraction /= 3
		sp.Incident.After = scenarios.Duration(4 * time.Second)
		sp.Workload.Rate = min(scenarios.MaxRate, max(sp.Workload.Rate, 100)*10)
	}
	sp.Faults = nil
	return sc, nil
}

// machine describes where curves are measured.
func machine(provider string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s, %d cores, provider %s", host, runtime.NumCPU(), provider)
}

// ReadCurves reads the curves a measurement wrote (its curves.json).
func ReadCurves(path string) (*Curves, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, exitcode.With(fmt.Errorf("read curves: %w", err), exitcode.InvalidInput)
	}
	var c Curves
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, exitcode.With(fmt.Errorf("read curves %s: not curves pgdrill measure wrote: %w", path, err), exitcode.InvalidInput)
	}
	return &c, nil
}
