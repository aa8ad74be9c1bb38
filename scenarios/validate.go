package scenarios

import (
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/objective"
)

// Limits that catch typos (an extra zero) before a drill tries to run them on one machine.
const (
	// MaxRows bounds spec.dataset.rows: about 100 GB of synthetic data.
	MaxRows = 1_000_000_000
	// MaxWriters bounds spec.workload.writers: each is a connection to every shard.
	MaxWriters = 64
	// MaxRate bounds spec.workload.rate, in writes per second.
	MaxRate = 100_000
	// MaxWait bounds the waits a scenario sets (incident after, detection, runbook timeout),
	// so that a unit slip (2400h for 2400s) fails here rather than after a night of CI.
	MaxWait = 24 * time.Hour
)

var idPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validate checks the decoded scenario, with defaults applied, and records every problem in d.
func validate(s *Scenario, d *decoder) {
	if s.APIVersion != APIVersion {
		msg := fmt.Sprintf("must be %s", APIVersion)
		if s.APIVersion != "" {
			msg = fmt.Sprintf("%q is not a version this pgdrill reads; %s", s.APIVersion, msg)
		}
		d.invalid("apiVersion", "%s", msg)
	}
	if s.Kind != KindScenario {
		d.invalid("kind", "must be %s", KindScenario)
	}
	validateMetadata(&s.Metadata, d)
	sp := &s.Spec
	if strings.TrimSpace(sp.Hypothesis) == "" {
		d.invalid("spec.hypothesis", "required: say what you expect the drill to show, e.g. %q",
			"we bring the deleted tenants back within 15 minutes without harming anyone else")
	}
	validateCluster(sp, d)
	validateWorkload(&sp.Workload, d)
	validateProtection(&sp.Protection, d)
	validateIncident(sp, d)
	validateDetection(&sp.Detection, sp.Incident.Kind, d)
	validateRestore(sp, d)
	validateFaults(sp, d)
	s.objectives = validateObjectives(sp.Objectives, d)
	validateProjection(sp.Projection, d)
	for i, o := range s.objectives {
		if o.Metric != objective.Located && o.Metric != objective.Target {
			continue
		}
		switch {
		case sp.Detection.Knowledge != KnowledgeBlind:
			d.invalid(fmt.Sprintf("spec.objectives[%d]", i), "%s is what a blind restore found of the harm, and this drill tells it the incident: set spec.detection.knowledge: blind", o.Metric)
		case sp.Restore.Strategy == RunbookStrategy:
			d.invalid(fmt.Sprintf("spec.objectives[%d]", i), "%s cannot be measured of a runbook, whose search is its own: the verification scores what it brought back", o.Metric)
		}
	}
}

func validateMetadata(m *Metadata, d *decoder) {
	switch {
	case m.ID == "":
		d.invalid("metadata.id", "required: lower-case letters, digits and dashes, e.g. wrong-id-deletion")
	case !idPattern.MatchString(m.ID):
		d.invalid("metadata.id", "%q must be 1-63 lower-case letters, digits and dashes, starting and ending with a letter or digit", m.ID)
	}
	if strings.TrimSpace(m.Title) == "" {
		d.invalid("metadata.title", "required: the scorecard's headline")
	}
	seen := map[string]int{}
	for i, tag := range m.Tags {
		path := fmt.Sprintf("metadata.tags[%d]", i)
		if strings.TrimSpace(tag) == "" {
			d.invalid(path, "empty tag")
		} else if j, dup := seen[tag]; dup {
			d.invalid(path, "%q is also tags[%d]", tag, j)
		}
		seen[tag] = i
	}
	if msg := oneOf(m.Tier, objective.Tiers()); msg != "" {
		d.invalid("metadata.tier", "%s", msg)
	}
}

func validateCluster(sp *Spec, d *decoder) {
	c, ds := &sp.Cluster, &sp.Dataset
	if c.Shards < 1 || c.Shards > fixtures.MaxShards {
		d.invalid("spec.cluster.shards", "must be between 1 and %d, got %d", fixtures.MaxShards, c.Shards)
	}
	if msg := oneOf(c.Layout, fixtures.Layouts()); msg != "" {
		d.invalid("spec.cluster.layout", "%s", msg)
	}
	if msg := oneOf(c.Provider, Providers()); msg != "" {
		d.invalid("spec.cluster.provider", "%s", msg)
	}
	tenantsOK := ds.Tenants >= 1 && ds.Tenants <= fixtures.MaxTenants
	if !tenantsOK {
		d.invalid("spec.dataset.tenants", "must be between 1 and %d, got %d", fixtures.MaxTenants, ds.Tenants)
	}
	// A schema of the scenario's own is known once Postgres has read it: how few rows a tenant
	// of it can have is checked then, before anything is filled.
	switch least := int64(ds.Tenants) * fixtures.MinTenantRows; {
	case ds.Rows > MaxRows:
		d.invalid("spec.dataset.rows", "must be at most %d, got %d", MaxRows, ds.Rows)
	case tenantsOK && ds.Schema == "" && ds.Rows < least:
		d.invalid("spec.dataset.rows", "must be at least %d (%d per tenant for %d tenants), got %d",
			least, fixtures.MinTenantRows, ds.Tenants, ds.Rows)
	}
	validateSchema(ds, d)
	if msg := oneOf(ds.Distribution, Distributions()); msg != "" {
		d.invalid("spec.dataset.distribution", "%s", msg)
	} else if ds.Distribution == Uniform {
		d.invalid("spec.dataset.distribution", "uniform sizes are not implemented yet; use skewed")
	}
}

func validateWorkload(w *Workload, d *decoder) {
	if w.Writers < 0 || w.Writers > MaxWriters {
		d.invalid("spec.workload.writers", "must be between 0 (no workload) and %d, got %d", MaxWriters, w.Writers)
	}
	if w.Writers == 0 {
		return
	}
	if w.Rate < 1 || w.Rate > MaxRate {
		d.invalid("spec.workload.rate", "must be between 1 and %d writes per second, got %d", MaxRate, w.Rate)
	}
	mix := map[string]int{"insert": w.Mix.Insert, "update": w.Mix.Update, "delete": w.Mix.Delete}
	negative := false
	for _, op := range []string{"insert", "update", "delete"} {
		if mix[op] < 0 {
			d.invalid("spec.workload.mix."+op, "must not be negative, got %d", mix[op])
			negative = true
		}
	}
	if sum := w.Mix.Insert + w.Mix.Update + w.Mix.Delete; !negative && sum != 100 {
		d.invalid("spec.workload.mix", "insert, update and delete are percentages and must add up to 100, got %d", sum)
	}
}

func validateProtection(p *Protection, d *decoder) {
	wait(d, "spec.protection.logicalExportInterval", p.LogicalExportInterval, true)
	wait(d, "spec.protection.standbyApplyDelay", p.StandbyApplyDelay, true)
}

// wait checks a duration field: not negative, zero only when zeroOK, at most MaxWait.
func wait(d *decoder, path string, v Duration, zeroOK bool) {
	switch {
	case v < 0:
		d.invalid(path, "must not be negative, got %s", v)
	case v == 0 && !zeroOK:
		d.invalid(path, "must be more than 0s")
	case v.Std() > MaxWait:
		d.invalid(path, "must be at most %s, got %s", MaxWait, v)
	}
}

func validateIncident(sp *Spec, d *decoder) {
	in := &sp.Incident
	const base = "spec.incident"
	if in.Kind == "" {
		d.invalid(base+".kind", "required: one of %s", strings.Join(names(IncidentKinds()), ", "))
		return
	}
	if msg := oneOf(in.Kind, IncidentKinds()); msg != "" {
		d.invalid(base+".kind", "%s", msg)
		return
	}
	wait(d, base+".after", in.After, true)
	takes := incidentParams[in.Kind]
	for _, p := range []string{keyFraction, keyTenants, keyTable, keyColumn, keyMigration, keyShard, keyRings} {
		if d.has(base+"."+p) && !slices.Contains(takes, p) {
			d.invalid(base+"."+p, "not a parameter of %s, which takes: %s", in.Kind, strings.Join(takes, ", "))
		}
	}
	tenants := sp.Dataset.Tenants
	for _, p := range takes {
		path := base + "." + p
		switch p {
		case keyFraction:
			checkFraction(d, path, in.Fraction, float64(tenants), fmt.Sprintf("%d tenants", tenants))
		case keyTenants:
			if in.Tenants < 1 || in.Tenants > tenants {
				d.invalid(path, "must be between 1 and the dataset's %d tenants, got %d", tenants, in.Tenants)
			}
		case keyTable:
			if m := builtinModel(sp); m != nil {
				if _, ok := m.LookupTable(in.Table); !ok {
					d.invalid(path, "%s", oneOf(in.Table, fixtures.TableNames(m.TenantTables())))
				}
			}
		case keyColumn:
			if m := builtinModel(sp); m != nil {
				checkColumn(d, path, m, in.Table, in.Column)
			}
		case keyMigration:
			if msg := oneOf(in.Migration, Migrations()); msg != "" {
				d.invalid(path, "%s", msg)
			}
		case keyShard:
			if in.Shard < 0 || in.Shard >= sp.Cluster.Shards {
				d.invalid(path, "must be a shard index between 0 and %d (the cluster has %d shards), got %d",
					sp.Cluster.Shards-1, sp.Cluster.Shards, in.Shard)
			}
		case keyRings:
			validateRings(in, float64(tenants)*in.Fraction, d)
		}
	}
}

// checkFraction checks a share in (0, 1] of a population, which must come to at least one.
func checkFraction(d *decoder, path string, f, population float64, of string) {
	switch {
	case f <= 0 || f > 1:
		d.invalid(path, "must be between 0 and 1 (a share), got %g", f)
	case f*population < 1:
		d.invalid(path, "%g of %s is %.2g tenants, fewer than one; raise it to at least %.2g",
			f, of, f*population, math.Ceil(1/population*1000)/1000)
	}
}

// builtinModel returns the built-in world's model when the scenario drills it, nil for a schema
// of its own: incident tables and columns of one are checked against it when Postgres has read
// it, at the start of the drill.
func builtinModel(sp *Spec) *fixtures.Model {
	if sp.Dataset.Schema != "" {
		return nil
	}
	return fixtures.Builtin()
}

// checkColumn refuses a column the table lacks and primary-key columns, which incidents do not
// rewrite or drop (the fixtures' keys hold every foreign key together).
func checkColumn(d *decoder, path string, m *fixtures.Model, table, column string) {
	t, ok := m.LookupTable(table)
	if !ok {
		return // reported at the table
	}
	if !slices.Contains(t.ColumnNames(), column) {
		d.invalid(path, "table %s has no column %q%s; its columns: %s", table, column,
			objective.DidYouMean(column, t.ColumnNames()), strings.Join(t.ColumnNames(), ", "))
		return
	}
	if slices.Contains(t.PrimaryKey, column) {
		d.invalid(path, "%s is part of %s's primary key; pick a data column", column, table)
	}
}

func validateRings(in *Incident, targeted float64, d *decoder) {
	const base = "spec.incident.rings"
	if len(in.Rings) < 2 {
		d.invalid(base, "a rollout needs at least 2 rings, got %d", len(in.Rings))
		return
	}
	seen := map[string]int{}
	var sum float64
	for i, r := range in.Rings {
		path := fmt.Sprintf("%s[%d]", base, i)
		switch j, dup := seen[r.Name]; {
		case strings.TrimSpace(r.Name) == "":
			d.invalid(path+".name", "required: the scorecard names the ring where damage was contained")
		case dup:
			d.invalid(path+".name", "%q is also rings[%d]", r.Name, j)
		}
		seen[r.Name] = i
		checkFraction(d, path+".fraction", r.Fraction, targeted, fmt.Sprintf("the %.3g targeted tenants", targeted))
		sum += r.Fraction
		switch {
		case r.Guard != nil && i == len(in.Rings)-1:
			d.invalid(path+".guard", "the last ring's guard never runs: nothing is left to halt")
		case r.Guard != nil && r.Guard.MaxRows < 1:
			d.invalid(path+".guard.maxRows", "must be at least 1, got %d", r.Guard.MaxRows)
		}
	}
	if math.Abs(sum-1) > 1e-9 {
		d.invalid(base, "the rings' fractions are shares of the targeted tenants and must add up to 1, got %.4g", sum)
	}
}

func validateDetection(det *Detection, kind IncidentKind, d *decoder) {
	if det.Knowledge != "" {
		if msg := oneOf(det.Knowledge, Knowledges()); msg != "" {
			d.invalid("spec.detection.knowledge", "%s", msg)
		}
	}
	if det.Probe == nil {
		wait(d, "spec.detection.delay", det.Delay, true)
		return
	}
	if d.has("spec.detection.delay") {
		d.invalid("spec.detection.delay", "give a delay or a probe, not both")
	}
	switch kind {
	case UpdateWithoutWhere, BadMigration:
		d.invalid("spec.detection.probe", "the probe notices tenants whose data is gone; %s leaves every tenant in place, so it would go unnoticed: use a delay", kind)
	}
	wait(d, "spec.detection.probe.interval", det.Probe.Interval, false)
	wait(d, "spec.detection.probe.timeout", det.Probe.Timeout, false)
	if det.Probe.Timeout < det.Probe.Interval {
		d.invalid("spec.detection.probe.timeout", "%s is shorter than the interval %s: the probe would never run",
			det.Probe.Timeout, det.Probe.Interval)
	}
}

// worstDetection is the longest the incident can go unnoticed.
func (det Detection) worstDetection() Duration {
	if det.Probe != nil {
		return det.Probe.Timeout
	}
	return det.Delay
}

func validateRestore(sp *Spec, d *decoder) {
	r := &sp.Restore
	const base = "spec.restore"
	if msg := oneOf(r.Strategy, Strategies()); msg != "" {
		d.invalid(base+".strategy", "%s", msg)
		return
	}
	if r.Strategy != RunbookStrategy {
		if r.Runbook != nil {
			d.invalid(base+".runbook", "only used with strategy runbook, not %s", r.Strategy)
		}
	} else {
		if r.Runbook == nil || strings.TrimSpace(r.Runbook.Command) == "" {
			d.invalid(base+".runbook.command", "required with strategy runbook: the command that restores the tenants")
		}
		if r.Runbook != nil {
			wait(d, base+".runbook.timeout", r.Runbook.Timeout, false)
		}
	}
	info, _ := LookupStrategy(string(r.Strategy)) // known: checked above
	for _, pr := range info.problems(sp) {
		d.invalid(pr.field, "%s", pr.msg)
	}
}

// fieldProblem is a problem with one field, before it is placed in the file.
type fieldProblem struct{ field, msg string }

func validateFaults(sp *Spec, d *decoder) {
	for i, f := range sp.Faults {
		validateFault(sp, f, fmt.Sprintf("spec.faults[%d]", i), d.invalid)
	}
}

// validateObjectives parses the objectives, pointing each problem at its line.
func validateObjectives(texts []string, d *decoder) objective.Objectives {
	const base = "spec.objectives"
	if len(texts) == 0 {
		if d.has(base) {
			d.invalid(base, "empty: a drill needs at least one objective; remove the key to use the tier's preset")
		}
		return nil
	}
	objs, err := objective.ParseAll(texts)
	var oe *objective.Error
	if errors.As(err, &oe) {
		for _, p := range oe.Problems {
			d.invalid(fmt.Sprintf("%s[%d]", base, p.Index), "%s", p.Message)
		}
	}
	return objs
}

// validateSchema checks what can be checked of a schema of the scenario's own before Postgres
// reads it: the file is there (for a scenario read from disk), and the tenancy settings name
// something.
func validateSchema(ds *Dataset, d *decoder) {
	if ds.Schema == "" {
		for _, f := range []string{"tenantKey", "tenantKeys", "columns"} {
			if d.has("spec.dataset." + f) {
				d.invalid("spec.dataset."+f, "applies to a schema of your own; name its DDL file with spec.dataset.schema")
			}
		}
		return
	}
	if d.dir != "" {
		path := ds.SchemaPath(d.file)
		if info, err := os.Stat(path); err != nil {
			d.invalid("spec.dataset.schema", "cannot read the schema file: %v", err)
		} else if info.IsDir() {
			d.invalid("spec.dataset.schema", "%s is a directory; name the DDL file (pg_dump --schema-only prints one)", path)
		}
	}
	for table, col := range ds.TenantKeys {
		if strings.TrimSpace(col) == "" {
			d.invalid("spec.dataset.tenantKeys."+table, "names no column")
		}
	}
	for key, o := range ds.Columns {
		path := "spec.dataset.columns." + key
		if table, col, ok := strings.Cut(key, "."); !ok || table == "" || col == "" {
			d.invalid(path, "must be written table.column")
		}
		set := 0
		for _, given := range []bool{len(o.Values) > 0, o.Faker != "", len(o.Range) > 0, o.Pattern != ""} {
			if given {
				set++
			}
		}
		if set > 1 {
			d.invalid(path, "give one of values, faker, range and pattern, not %d", set)
		}
		if len(o.Range) != 0 && len(o.Range) != 2 {
			d.invalid(path+".range", "must be two values, low and high, got %d", len(o.Range))
		}
		if o.NullShare != nil && (*o.NullShare < 0 || *o.NullShare > 1) {
			d.invalid(path+".nullShare", "must be between 0 and 1, got %g", *o.NullShare)
		}
	}
}

// validateProjection checks the production size a scenario projects to, field by field.
func validateProjection(p *Projection, d *decoder) {
	if p == nil {
		return
	}
	if p.DataGB <= 0 {
		d.invalid("spec.projection.dataGB", "required: the fleet's data in GB, above 0")
	}
	if p.WALGBPerHour < 0 {
		d.invalid("spec.projection.walGBPerHour", "must not be negative")
	}
	if p.BackupAge < 0 {
		d.invalid("spec.projection.backupAge", "must not be negative")
	}
	if p.Tenants < 1 {
		d.invalid("spec.projection.tenants", "required: how many tenants the incident harms, at least 1")
	}
	if p.RowsPerTenant <= 0 {
		d.invalid("spec.projection.rowsPerTenant", "required: the harmed tenants' average rows, above 0")
	}
	if p.Shards < 1 {
		d.invalid("spec.projection.shards", "required: the fleet's shards, at least 1")
	}
}
