package score

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// diffLimit bounds how many differing rows a table's diff lists. The affected tenants' rows are
// listed in full up to it (RPO dates each loss, and each is classed as lost, resurrected, ...).
const diffLimit = 1 << 20

// Facts is what a verification weighs besides what the servers hold now: all of it the harness's
// own record, none of it the restore's.
type Facts struct {
	Plan *fixtures.Plan
	// Source is where the servers are.
	Source   truth.Source
	Baseline Baseline
	// Affected are the tenants the incident harmed.
	Affected []fixtures.Tenant
	// Incident is what the incident did.
	Incident *incident.Record
	// Ledger is every write the workload sent, in order.
	Ledger []workload.Entry
}

// Findings is what a verification found.
type Findings struct {
	// Writes counts the workload's acknowledged writes.
	Writes int `json:"writes"`
	// Affected is the completeness of every affected tenant, ordered by id.
	Affected []Tenant `json:"affected"`
	// Collateral lists every table (and directory entry) of an unaffected tenant that differs from
	// what its own writes say it must hold.
	Collateral []Harmed `json:"collateral,omitempty"`
	// Diffs are the affected tenants' row differences, uncertain rows set apart: what RPO dates.
	Diffs []truth.TableDiff `json:"-"`
	// predated holds the keys of the diffs' missing rows that the baseline holds (Predates).
	predated map[truth.TenantTable]map[string]bool
	// Schema lists every difference of the schema from the baseline's.
	Schema []truth.SchemaChange `json:"schema,omitempty"`
	// Integrity are the checks after the restore: schema, placement, routing.
	Integrity []Check `json:"integrity"`
	// Excused counts rows, of any tenant, that a write of unknown outcome touched and that hold a
	// state it allows; Unresolved those whose possible states are not known.
	Excused    int64 `json:"excused,omitempty"`
	Unresolved int64 `json:"unresolved,omitempty"`
}

// Predates reports whether a missing row of the affected tenants' diffs was in the baseline: its
// loss is older than every write of the workload.
func (f *Findings) Predates(tt truth.TenantTable, key []string) bool {
	return f.predated[tt][truth.KeyString(key)]
}

// predatedKeys reads, for every table of diffs missing rows, which of the rows they list the
// baseline holds, reading its rows back one at a time.
func predatedKeys(ctx context.Context, base Baseline, diffs []truth.TableDiff) (map[truth.TenantTable]map[string]bool, error) {
	missing := map[truth.TenantTable]map[string]bool{}
	for _, d := range diffs {
		for _, r := range d.Rows {
			if r.Kind != truth.Missing {
				continue
			}
			if missing[d.TenantTable] == nil {
				missing[d.TenantTable] = map[string]bool{}
			}
			missing[d.TenantTable][truth.KeyString(r.Key)] = true
		}
	}
	out := map[truth.TenantTable]map[string]bool{}
	err := base.Rows.EachRowHash(ctx, slices.Collect(maps.Keys(missing)), func(tt truth.TenantTable, r truth.RowHash) error {
		if k := truth.KeyString(r.Key); missing[tt][k] {
			if out[tt] == nil {
				out[tt] = map[string]bool{}
			}
			out[tt][k] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read baseline rows of the missing rows: %w", err)
	}
	return out, nil
}

// count adds a diff's uncertain rows to the findings' totals.
func (f *Findings) count(d truth.TableDiff) {
	f.Excused += d.Excused
	f.Unresolved += d.Unresolved
}

// bystander counts an unaffected tenant's diff and keeps it as collateral when rows differ.
func (f *Findings) bystander(d truth.TableDiff, plan *fixtures.Plan) {
	f.count(d)
	if d.Differs() {
		t, _ := plan.Tenant(d.Tenant)
		f.Collateral = append(f.Collateral, Harmed{TableDiff: d, Shard: t.Shard})
	}
}

// Verify compares every tenant with what it must hold: the affected ones row by row (their
// baseline rows changed by the ledger), every other one by fingerprint first and, where that
// differs, row by row against its rows rebuilt from the fill and the ledger; the tenant
// directory entry by entry; and the schema of every database object by object. A write of unknown
// outcome excuses its own row only, in either of the states it allows.
func Verify(ctx context.Context, f Facts) (*Findings, error) {
	after, err := truth.Take(ctx, f.Source)
	if err != nil {
		return nil, err
	}
	ledger := workload.LedgerOf(f.Ledger)
	out := &Findings{Writes: ledger.Acknowledged()}
	affected := map[int64]bool{}
	for _, t := range f.Affected {
		affected[t.ID] = true
	}
	r := newReplays(&f)
	defer r.close(ctx)

	uncertain := ledger.Uncertain()
	updated := map[truth.TenantTable]bool{}
	for _, e := range f.Ledger {
		if e.Op == workload.OpUpdate && !e.Indeterminate {
			updated[e.TenantTable()] = true
		}
	}
	var victims []truth.Mismatch
	doubts := map[truth.TenantTable]truth.Doubts{}
	want := expectedRows{replayed: map[truth.TenantTable][]truth.RowHash{}, ledger: victimRows{base: f.Baseline.Rows, entries: f.Ledger}}
	var bystanders []truth.TenantTable
	for _, m := range withMarkedTables(f.Plan.Model, ledger.Check(f.Baseline.Snapshot, after), f.Affected, r.marks) {
		if !affected[m.Tenant] {
			bystanders = append(bystanders, m.TenantTable)
			continue
		}
		victims = append(victims, m)
		_, marked := r.marks[m.Tenant]
		switch {
		case columnHarmOf(f.Incident, m.TenantTable) != nil:
			// A repaired column's rows hash as the repair left them, not as a rebuild would
			// (reconcileColumns judges them): which state a row of unknown outcome is in cannot
			// be told there.
			if len(uncertain[m.TenantTable]) > 0 {
				doubts[m.TenantTable] = unknownStates(uncertain[m.TenantTable])
			}
		case len(uncertain[m.TenantTable]) > 0 || updated[m.TenantTable] || marked:
			// An acknowledged update of a row the restore left damaged hashed the damaged row
			// as the server had it, and rows a purge should have marked deleted are hashed
			// unmarked by the ledger: only a rebuild says what the row must be.
			exp, err := r.table(ctx, m.TenantTable)
			if err != nil {
				return nil, err
			}
			want.replayed[m.TenantTable], doubts[m.TenantTable] = exp.Rows, exp.Possible
		}
	}
	harmed, err := bystanderDiffs(ctx, r, f.Source, bystanders)
	if err != nil {
		return nil, err
	}
	for _, h := range harmed {
		out.bystander(h, f.Plan)
	}
	diffs, err := truth.Diff(ctx, want, f.Source, victims, doubts, diffLimit)
	if err != nil {
		return nil, err
	}
	if diffs, err = reconcileColumns(ctx, f, want.ledger, diffs); err != nil {
		return nil, err
	}
	dir, err := truth.TakeDirectory(ctx, f.Source.Catalog)
	if err != nil {
		return nil, err
	}
	entries, err := directoryDiffs(ctx, r, dir)
	if err != nil {
		return nil, err
	}
	for _, d := range entries {
		if affected[d.Tenant] {
			diffs = append(diffs, d)
		} else {
			out.bystander(d, f.Plan)
		}
	}
	out.Diffs = diffs
	if out.predated, err = predatedKeys(ctx, f.Baseline, diffs); err != nil {
		return nil, err
	}
	for _, d := range diffs {
		out.count(d)
	}
	// How many rows each affected tenant must hold: one pass over the ledger, and the baseline's
	// rows read back one at a time, so memory does not grow with the harm.
	counts, err := want.count(ctx, tenantTables(f.Plan.Model, f.Affected))
	if err != nil {
		return nil, err
	}
	rowsOf := map[int64]int64{}
	for tt, n := range counts {
		rowsOf[tt.Tenant] += n
	}
	for _, v := range f.Affected {
		expected := rowsOf[v.ID]
		if _, listed := f.Baseline.Directory.Homes[v.ID]; listed {
			expected++ // its directory entry
		}
		out.Affected = append(out.Affected, ScoreTenant(v.ID, v.Shard, expected, diffs, f.Ledger))
	}
	if out.Integrity, out.Schema, err = integrity(ctx, f, after, dir); err != nil {
		return nil, err
	}
	return out, nil
}

// withMarkedTables adds to the ledger's mismatches every table with a soft-delete column of the
// affected tenants a purge should only have marked deleted: the ledger's fingerprint of such a
// table is of its rows unmarked, so a restore that brought them back unmarked would match it,
// and only the rows rebuilt with the mark tell.
func withMarkedTables(model *fixtures.Model, mismatches []truth.Mismatch, affected []fixtures.Tenant, marks map[int64]incident.IntendedMark) []truth.Mismatch {
	out := slices.Clone(mismatches)
	listed := map[truth.TenantTable]bool{}
	for _, m := range mismatches {
		listed[m.TenantTable] = true
	}
	for _, v := range affected {
		if _, ok := marks[v.ID]; !ok {
			continue
		}
		for _, t := range model.TenantTables() {
			if tt := (truth.TenantTable{Tenant: v.ID, Table: t.Name}); t.SoftDelete != "" && !listed[tt] {
				out = append(out, truth.Mismatch{TenantTable: tt})
			}
		}
	}
	slices.SortFunc(out, func(a, b truth.Mismatch) int {
		return cmp.Or(cmp.Compare(a.Tenant, b.Tenant), cmp.Compare(a.Table, b.Table))
	})
	return out
}

// unknownStates marks every key as one whose possible states are not known.
func unknownStates(keys map[string]bool) truth.Doubts {
	out := truth.Doubts{}
	for k := range keys {
		out[k] = []*int64{}
	}
	return out
}

// bystanderDiffs diffs unaffected tenants' tables, whose fingerprints differ from what their
// writes say, row by row against their rows rebuilt from the fill and the ledger.
func bystanderDiffs(ctx context.Context, r *replays, src truth.Source, tables []truth.TenantTable) ([]truth.TableDiff, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	got, err := src.RowHashes(ctx, tables)
	if err != nil {
		return nil, err
	}
	out := make([]truth.TableDiff, 0, len(tables))
	for _, tt := range tables {
		exp, err := r.table(ctx, tt)
		if err != nil {
			return nil, err
		}
		out = append(out, truth.DiffRows(tt, exp.Rows, got[tt], exp.Possible, diffLimit))
	}
	return out, nil
}

// directoryDiffs compares the tenant directory now with what it must hold, tenant by tenant: one
// TableDiff (table truth.DirectoryTable) for every tenant whose entry differs.
func directoryDiffs(ctx context.Context, r *replays, now *truth.Directory) ([]truth.TableDiff, error) {
	exp, err := r.directory(ctx)
	if err != nil {
		return nil, err
	}
	byTenant := func(rows []truth.RowHash) map[string][]truth.RowHash {
		out := map[string][]truth.RowHash{}
		for _, row := range rows {
			out[row.Key[0]] = append(out[row.Key[0]], row)
		}
		return out
	}
	want, got := byTenant(exp.Rows), byTenant(now.Rows)
	ids := map[string]bool{}
	for id := range want {
		ids[id] = true
	}
	for id := range got {
		ids[id] = true
	}
	var out []truth.TableDiff
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		if sameRows(want[id], got[id]) {
			continue
		}
		n, err := strconv.ParseInt(id, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("compare the tenant directory: entry key %q is not a tenant id", id)
		}
		d := truth.DiffRows(truth.TenantTable{Tenant: n, Table: truth.DirectoryTable}, want[id], got[id], exp.Possible, diffLimit)
		if d.Differs() || d.Unresolved+d.Excused > 0 {
			out = append(out, d)
		}
	}
	return out, nil
}

// sameRows reports whether two short lists of rows are the same rows.
func sameRows(a, b []truth.RowHash) bool {
	return slices.EqualFunc(a, b, func(x, y truth.RowHash) bool { return x.Hash == y.Hash && slices.Equal(x.Key, y.Key) })
}

// integrity checks the schema of every database against the baseline's, that every tenant's rows
// are on its home shard (by the directory before the incident), and that the live directory (dir)
// routes every tenant there.
func integrity(ctx context.Context, f Facts, after *truth.Snapshot, dir *truth.Directory) ([]Check, []truth.SchemaChange, error) {
	places, err := truth.SchemaPlaces(ctx, f.Source)
	if err != nil {
		return nil, nil, err
	}
	now, err := truth.TakeSchema(ctx, places)
	if err != nil {
		return nil, nil, err
	}
	changes := truth.CompareSchemas(f.Baseline.Schema, now)
	reference, err := referenceCheck(ctx, f, places)
	if err != nil {
		return nil, nil, err
	}
	schema := Check{Name: "schema", Passed: len(changes) == 0,
		Detail: "every table, column, constraint, index, sequence, trigger, type and function is as it was before the incident"}
	if len(changes) > 0 {
		var words []string
		for _, c := range changes[:min(len(changes), 5)] {
			words = append(words, c.Detail)
		}
		schema.Detail = fmt.Sprintf("%d difference(s) from the schema before the incident: %s", len(changes), strings.Join(words, "; "))
		if len(changes) > 5 {
			schema.Detail += "; ..."
		}
	}

	homes := f.Baseline.Directory.Homes
	misplaced := truth.CheckPlacement(homes, after)
	placement := Check{Name: "placement", Passed: len(misplaced) == 0,
		Detail: "every tenant's rows are on the shard the directory named before the incident"}
	if len(misplaced) > 0 {
		m := misplaced[0]
		placement.Detail = fmt.Sprintf("%d tenant(s) have rows off their shard, e.g. tenant %d has %d row(s) on shard %d, its shard being %d",
			len(misplaced), m.Tenant, m.Rows, m.Shard, m.CatalogShard)
	}

	var misrouted []string
	for _, id := range slices.Sorted(maps.Keys(homes)) {
		switch shard, listed := dir.Homes[id]; {
		case !listed:
			misrouted = append(misrouted, fmt.Sprintf("tenant %d has no directory entry, so nothing routes to its rows on shard %d", id, homes[id]))
		case shard != homes[id]:
			misrouted = append(misrouted, fmt.Sprintf("tenant %d is routed to shard %d, but its rows are on shard %d", id, shard, homes[id]))
		}
	}
	routing := Check{Name: "routing", Passed: len(misrouted) == 0, Detail: "the directory routes every tenant to the shard its rows are on"}
	if len(misrouted) > 0 {
		routing.Detail = fmt.Sprintf("%d tenant(s) are not routed to their rows: %s", len(misrouted), strings.Join(misrouted[:min(3, len(misrouted))], "; "))
	}
	crossed, err := truth.CheckTenancy(ctx, f.Source)
	if err != nil {
		return nil, nil, err
	}
	tenancy := Check{Name: "tenancy", Passed: len(crossed) == 0,
		Detail: "every foreign key of a tenant's row points at a row of the same tenant"}
	if len(crossed) > 0 {
		var words []string
		for _, c := range crossed[:min(3, len(crossed))] {
			words = append(words, c.String())
		}
		tenancy.Detail = fmt.Sprintf("%d foreign key(s) cross tenants: %s", len(crossed), strings.Join(words, "; "))
	}
	checks := []Check{schema, placement, routing, tenancy}
	if reference != nil {
		checks = append(checks, *reference)
	}
	return checks, changes, nil
}

// referenceCheck compares the model's reference tables with the baseline's: global data a tenant
// restore must never touch. It is nil for a model without reference tables.
func referenceCheck(ctx context.Context, f Facts, places []truth.SchemaPlace) (*Check, error) {
	if len(f.Plan.Model.ReferenceTables()) == 0 {
		return nil, nil
	}
	now, err := truth.TakeReference(ctx, f.Source, places)
	if err != nil {
		return nil, err
	}
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(f.Baseline.Reference)) {
		was, is := f.Baseline.Reference[k], now[k]
		switch _, present := now[k]; {
		case !present:
			changed = append(changed, k+" is gone")
		case was != is:
			changed = append(changed, fmt.Sprintf("%s changed: %d rows before, %d now", k, was.Rows, is.Rows))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(now)) {
		if _, before := f.Baseline.Reference[k]; !before {
			changed = append(changed, k+" is new")
		}
	}
	c := Check{Name: "reference", Passed: len(changed) == 0,
		Detail: "every reference table (global data, owned by no tenant) is as it was before the incident"}
	if len(changed) > 0 {
		c.Detail = fmt.Sprintf("%d reference table(s) differ from before the incident: %s", len(changed), strings.Join(changed[:min(3, len(changed))], "; "))
	}
	return &c, nil
}

// columnHarmOf returns the harm that overwrote or dropped a column of this tenant table.
func columnHarmOf(rec *incident.Record, tt truth.TenantTable) *incident.Harm {
	if rec == nil {
		return nil
	}
	for i, h := range rec.Harms {
		if h.Column != nil && h.Column.Table == tt.Table && slices.Contains(h.Tenants, tt.Tenant) {
			return &rec.Harms[i]
		}
	}
	return nil
}
