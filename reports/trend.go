package reports

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// TrendSchemaVersion is the version of trend.json, versioned for the same reason as reports.
const TrendSchemaVersion = "pgdrill.trend/v1"

// The trend's files.
const (
	FileTrendJSON = "trend.json"
	FileTrendHTML = "trend.html"
)

// DefaultStaleAfter is how long a scenario may go without a run before the trend flags it: a
// restore path not drilled for a week may have rotted.
const DefaultStaleAfter = 7 * 24 * time.Hour

// TrendOptions say how to draw a trend.
type TrendOptions struct {
	// Now is when the trend is drawn; staleness is measured from it. Default: time.Now().
	Now time.Time
	// StaleAfter flags scenarios whose last run is older. Default: DefaultStaleAfter.
	StaleAfter time.Duration
	// Scenarios are the scenario ids that should be drilled (the built-ins, say), so that one
	// never run at all shows as not run lately. Default: only the scenarios found.
	Scenarios []string
}

// TrendReport is many runs summed up per scenario: what trend.json holds and trend.html shows.
type TrendReport struct {
	SchemaVersion  string          `json:"schema_version"`
	Generated      time.Time       `json:"generated"`
	StaleAfterDays float64         `json:"stale_after_days"`
	Scenarios      []ScenarioTrend `json:"scenarios"`
	// Stale lists the ids of scenarios not run within StaleAfterDays (or never run).
	Stale []string `json:"stale"`
	// Skipped are report files that could not be read; they are listed, not silently dropped.
	Skipped []SkippedRun `json:"skipped,omitempty"`
}

// ScenarioTrend is one scenario's runs over time.
type ScenarioTrend struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Runs are ordered by start, oldest first.
	Runs []TrendRun `json:"runs"`
	// PassRate is the share of runs that passed, in percent; 0 with no runs.
	PassRate float64 `json:"pass_rate"`
	// Weeks are the pass rates per week (Monday, UTC), oldest first.
	Weeks []WeekRate `json:"weeks"`
	// RTOObjectiveMS is the latest run's RTO objective, drawn as the line runs must stay under.
	RTOObjectiveMS *int64 `json:"rto_objective_ms,omitempty"`
	// Stale is true when the last run is older than the trend's StaleAfterDays, or none ran.
	Stale bool `json:"stale"`
	// DaysSinceLast is the age of the last run, in days; absent when none ran.
	DaysSinceLast *float64 `json:"days_since_last,omitempty"`

	latest time.Time // start of the run Title and RTOObjectiveMS come from
}

// Last returns the latest run, or nil when the scenario never ran.
func (s ScenarioTrend) Last() *TrendRun {
	if len(s.Runs) == 0 {
		return nil
	}
	return &s.Runs[len(s.Runs)-1]
}

// TrendRun is one run, as much as a trend needs of it.
type TrendRun struct {
	RunID string `json:"run_id"`
	// Dir is the run's directory relative to the root it was found under, for links.
	Dir     string    `json:"dir"`
	Started time.Time `json:"started"`
	Verdict Verdict   `json:"verdict"`
	Passed  bool      `json:"passed"`
	RTOMS   *int64    `json:"rto_ms,omitempty"`
	Reason  string    `json:"reason"`
}

// WeekRate is the pass rate of one week's runs.
type WeekRate struct {
	// Week is the Monday the week starts on, as 2006-01-02.
	Week   string  `json:"week"`
	Runs   int     `json:"runs"`
	Passed int     `json:"passed"`
	Rate   float64 `json:"rate"`
}

// SkippedRun is a report.json the trend could not read, and why.
type SkippedRun struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// Trend reads every report.json found under the roots (a run's directory, or a directory of
// run directories, at any depth) and sums the runs up per scenario. Unreadable reports are
// listed in Skipped rather than failing the whole trend; finding no readable report at all is
// an error.
func Trend(opts TrendOptions, roots ...string) (*TrendReport, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.StaleAfter <= 0 {
		opts.StaleAfter = DefaultStaleAfter
	}
	t := &TrendReport{SchemaVersion: TrendSchemaVersion, Generated: opts.Now.UTC(),
		StaleAfterDays: opts.StaleAfter.Hours() / 24}
	byID := map[string]*ScenarioTrend{}
	for _, id := range opts.Scenarios {
		byID[id] = &ScenarioTrend{ID: id}
	}
	found := 0
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != FileJSON {
				return err
			}
			r, err := Read(filepath.Dir(path))
			if err != nil {
				t.Skipped = append(t.Skipped, SkippedRun{Path: path, Error: err.Error()})
				return nil
			}
			found++
			rel, err := filepath.Rel(root, filepath.Dir(path))
			if err != nil {
				return fmt.Errorf("locate run %s: %w", path, err)
			}
			s := byID[r.Scenario.ID]
			if s == nil {
				s = &ScenarioTrend{ID: r.Scenario.ID}
				byID[r.Scenario.ID] = s
			}
			s.add(r, filepath.ToSlash(rel))
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read runs under %s: %w", root, err)
		}
	}
	if found == 0 {
		return nil, fmt.Errorf("read runs under %s: %w", strings.Join(roots, ", "), errNoRuns)
	}
	for _, s := range byID {
		s.finish(opts)
		t.Scenarios = append(t.Scenarios, *s)
	}
	slices.SortFunc(t.Scenarios, func(a, b ScenarioTrend) int { return cmp.Compare(a.ID, b.ID) })
	for _, s := range t.Scenarios {
		if s.Stale {
			t.Stale = append(t.Stale, s.ID)
		}
	}
	return t, nil
}

// errNoRuns says a trend found nothing to draw.
var errNoRuns = errors.New("no readable report.json found")

// add records one run; the latest run's title and RTO objective win, as scenarios get edited.
func (s *ScenarioTrend) add(r *Report, dir string) {
	s.Runs = append(s.Runs, TrendRun{RunID: r.RunID, Dir: dir, Started: r.Started.UTC(), Verdict: r.Verdict,
		Passed: r.Passed(), RTOMS: r.Measures.RTOMS, Reason: r.Reason})
	if r.Started.Before(s.latest) {
		return
	}
	s.latest, s.Title, s.RTOObjectiveMS = r.Started, r.Scenario.Title, nil
	if o, ok := r.Objective("rto"); ok && o.Threshold.Unit == UnitDuration {
		rto := int64(o.Threshold.Value * 1000)
		s.RTOObjectiveMS = &rto
	}
}

// finish orders the runs and computes the rates and staleness.
func (s *ScenarioTrend) finish(opts TrendOptions) {
	slices.SortStableFunc(s.Runs, func(a, b TrendRun) int { return a.Started.Compare(b.Started) })
	passed := 0
	for _, r := range s.Runs {
		if r.Passed {
			passed++
		}
		week := weekOf(r.Started)
		if n := len(s.Weeks); n == 0 || s.Weeks[n-1].Week != week {
			s.Weeks = append(s.Weeks, WeekRate{Week: week})
		}
		w := &s.Weeks[len(s.Weeks)-1]
		w.Runs++
		if r.Passed {
			w.Passed++
		}
		w.Rate = 100 * float64(w.Passed) / float64(w.Runs)
	}
	if len(s.Runs) > 0 {
		s.PassRate = 100 * float64(passed) / float64(len(s.Runs))
		age := opts.Now.Sub(s.Last().Started)
		days := float64(age.Round(time.Hour)) / float64(24*time.Hour)
		s.DaysSinceLast = &days
	}
	s.Stale = len(s.Runs) == 0 || opts.Now.Sub(s.Last().Started) > opts.StaleAfter
	if s.Title == "" {
		s.Title = s.ID
	}
}

// weekOf returns the Monday (UTC) of t's week, as 2006-01-02.
func weekOf(t time.Time) string {
	t = t.UTC()
	back := (int(t.Weekday()) + 6) % 7
	return t.AddDate(0, 0, -back).Format(time.DateOnly)
}

// WriteTrend writes trend.json and trend.html into dir and returns their paths.
func WriteTrend(dir string, t *TrendReport) ([]string, error) {
	data, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("write trend: %w", err)
	}
	html, err := TrendHTML(t)
	if err != nil {
		return nil, fmt.Errorf("write trend: %w", err)
	}
	if err := writeFile(dir, FileTrendJSON, append(data, '\n')); err != nil {
		return nil, fmt.Errorf("write trend: %w", err)
	}
	if err := writeFile(dir, FileTrendHTML, html); err != nil {
		return []string{filepath.Join(dir, FileTrendJSON)}, fmt.Errorf("write trend: %w", err)
	}
	return []string{filepath.Join(dir, FileTrendJSON), filepath.Join(dir, FileTrendHTML)}, nil
}
