package drill

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// maxExamples bounds how many differing rows a tenant's score names.
const maxExamples = 10

// verify compares every tenant with what it must hold: the affected ones
// row by row (baseline + ledger), the others by fingerprint (their state before the workload +
// the ledger). It then checks integrity and computes the measures.
func (r *run) verify(ctx context.Context) error {
	ledger := r.ledger
	verified := time.Now()
	after, err := truth.Take(ctx, r.src)
	if err != nil {
		return err
	}
	r.out.Writes = ledger.Acknowledged()
	differences, unresolved := ledger.Check(r.before, after)
	affected := map[int64]bool{}
	for _, v := range r.victims {
		affected[v.ID] = true
	}
	var mismatches []truth.Mismatch
	for _, d := range differences {
		if affected[d.Tenant] {
			mismatches = append(mismatches, d)
		} else {
			t, _ := r.plan.Tenant(d.Tenant)
			r.out.Collateral = append(r.out.Collateral, Harmed{Mismatch: d, Shard: t.Shard})
		}
	}
	r.out.Unresolved = unresolved
	exp := expected{base: r.base, entries: ledger.Entries()}
	// Every differing row is listed (affected tenants are few): RPO dates each loss.
	diffs, err := truth.Diff(ctx, exp, r.src, mismatches, 1<<20)
	if err != nil {
		return err
	}
	if diffs, err = r.reconcileColumns(ctx, exp, diffs); err != nil {
		return err
	}
	if r.out.Affected, err = r.scoreTenants(ctx, exp, diffs, ledger.Entries()); err != nil {
		return err
	}
	if r.out.Integrity, err = r.checkIntegrity(ctx, after); err != nil {
		return err
	}
	r.measure(verified)
	if rpo, ok := r.rpo(diffs, ledger.Entries()); ok {
		r.out.Measures[objective.RPO] = objective.Duration(rpo)
	}
	return nil
}

// scoreTenants turns row differences into each affected tenant's completeness.
func (r *run) scoreTenants(ctx context.Context, exp expected, diffs []truth.TableDiff, entries []workload.Entry) ([]TenantScore, error) {
	deleted := map[string]bool{}   // keys the ledger deleted
	uncertain := map[string]bool{} // keys with a write of unknown outcome
	for _, e := range entries {
		k := e.Table + "\x00" + keyString(e.Key)
		if e.Indeterminate {
			uncertain[k] = true
		} else if e.Op == workload.OpDelete {
			deleted[k] = true
		}
	}
	var out []TenantScore
	for _, v := range r.victims {
		s := TenantScore{ID: v.ID, Shard: v.Shard}
		for _, t := range fixtures.TableNames() {
			rows, err := exp.RowHashes(ctx, v.ID, t)
			if err != nil {
				return nil, err
			}
			s.Expected += int64(len(rows))
		}
		for _, d := range diffs {
			if d.Tenant != v.ID {
				continue
			}
			for _, row := range d.Rows {
				k := d.Table + "\x00" + keyString(row.Key)
				switch {
				case uncertain[k]:
					s.Indeterminate++
					continue
				case row.Kind == truth.Missing:
					s.Lost++
				case row.Kind == truth.Changed:
					s.Wrong++
				case row.Kind == truth.Duplicated:
					s.Duplicated++
				case row.Kind == truth.Extra && deleted[k]:
					s.Resurrected++
				default:
					s.Unexpected++
				}
				if len(s.Examples) < maxExamples {
					s.Examples = append(s.Examples, fmt.Sprintf("%s %s(%s)", row.Kind, d.Table, strings.Join(row.Key, ",")))
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// checkIntegrity checks that every shard's foreign keys and primary keys are in place and
// validated, and that every tenant's rows live on the shard the catalog names.
func (r *run) checkIntegrity(ctx context.Context, after *truth.Snapshot) ([]Check, error) {
	misplaced, err := truth.CheckPlacement(ctx, r.src, after)
	if err != nil {
		return nil, err
	}
	placement := Check{Name: "placement", Passed: len(misplaced) == 0,
		Detail: "every tenant's rows are on the shard the catalog names"}
	if !placement.Passed {
		placement.Detail = fmt.Sprintf("%d tenant(s) have rows off their catalog shard, e.g. %+v", len(misplaced), misplaced[0])
	}
	keys := Check{Name: "keys", Passed: true, Detail: "every primary key and foreign key is in place and validated"}
	var broken []string
	for i, s := range r.c.Shards() {
		problems, err := missingConstraints(ctx, s.DSN(), r.plan.Spec.Layout, r.plan.OnShard(i))
		if err != nil {
			return nil, fmt.Errorf("check constraints of shard %d: %w", i, err)
		}
		broken = append(broken, problems...)
	}
	if len(broken) > 0 {
		keys.Passed = false
		keys.Detail = fmt.Sprintf("%d tenant container(s) lack constraints: %s", len(broken), strings.Join(broken[:min(5, len(broken))], "; "))
	}
	return []Check{keys, placement}, nil
}

// missingConstraints names the places on a shard whose tables lack a validated primary or
// foreign key: a restore that recreated tables without them leaves uniqueness and references
// unguarded.
func missingConstraints(ctx context.Context, dsn string, layout fixtures.Layout, tenants []fixtures.Tenant) ([]string, error) {
	want := 0
	for _, t := range fixtures.Tables() {
		want += 1 + len(t.ForeignKeys)
	}
	count := func(conn *pgx.Conn, schema string) (int, error) {
		var n int
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
			JOIN pg_class r ON r.oid = c.conrelid
			WHERE n.nspname = $1 AND r.relname = ANY($2) AND c.contype IN ('p', 'f') AND c.convalidated`,
			schema, fixtures.TableNames()).Scan(&n)
		return n, err
	}
	var out []string
	places := []fixtures.Location{{Database: fixtures.SharedDatabase, Schema: fixtures.SharedSchema}}
	if layout != fixtures.LayoutShared {
		places = places[:0]
		for _, t := range tenants {
			places = append(places, layout.Locate(t.ID))
		}
	}
	for _, loc := range places {
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, err
		}
		cfg.Database = loc.Database
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			out = append(out, fmt.Sprintf("%s: %v", loc.Database, err))
			continue
		}
		n, err := count(conn, loc.Schema)
		conn.Close(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		if n != want {
			out = append(out, fmt.Sprintf("%s.%s has %d of %d keys", loc.Database, loc.Schema, n, want))
		}
	}
	return out, nil
}

// measure computes RTO, RPO, completeness, lost rows, collateral, integrity and the restore's
// phase times from the timeline and the data.
func (r *run) measure(verified time.Time) {
	m := r.out.Measures
	first := r.out.Incident.First()
	m[objective.RTO] = objective.Duration(verified.Sub(first))

	var expectedRows, lost int64
	for _, t := range r.out.Affected {
		expectedRows += t.Expected
		lost += t.Bad()
	}
	if expectedRows > 0 {
		m[objective.Completeness] = objective.Percent(100 * float64(expectedRows-min(lost, expectedRows)) / float64(expectedRows))
	}
	m[objective.LostRows] = objective.Rows(lost)
	var collateral int64
	for _, d := range r.out.Collateral {
		collateral += d.Rows()
	}
	m[objective.Collateral] = objective.Rows(collateral)
	integrity := true
	for _, c := range r.out.Integrity {
		integrity = integrity && c.Passed
	}
	m[objective.Integrity] = objective.Status(integrity)
	if r.out.Restore != nil {
		span := map[string][2]time.Time{}
		for _, p := range r.out.Restore.Phases {
			s, ok := span[p.Name]
			if !ok || p.Start.Before(s[0]) {
				s[0] = p.Start
			}
			if p.End.After(s[1]) {
				s[1] = p.End
			}
			span[p.Name] = s
		}
		for name, s := range span {
			m[objective.Phase(name)] = objective.Duration(s[1].Sub(s[0]))
		}
	}
}

// rpo is the data loss in time: from the newest point such that every acknowledged write of the
// affected tenants at or before it is present after the restore, to the incident. Each missing or
// wrong row dates its loss: to the first acknowledged write of its key, or to the baseline (the
// workload's start) for a row that predates the workload. Rows that should not be there are not
// a loss of data and do not count; ok is false when there is no incident to measure from.
func (r *run) rpo(diffs []truth.TableDiff, entries []workload.Entry) (time.Duration, bool) {
	if r.out.Incident == nil {
		return 0, false
	}
	incidentAt := r.out.Incident.First()
	firstWrite := map[string]time.Time{}
	for _, e := range entries {
		k := fmt.Sprint(e.Tenant) + "\x00" + e.Table + "\x00" + keyString(e.Key)
		if _, seen := firstWrite[k]; !seen && !e.Indeterminate {
			firstWrite[k] = e.Acked
		}
	}
	lossAt := incidentAt
	for _, d := range diffs {
		for _, row := range d.Rows {
			if row.Kind != truth.Missing && row.Kind != truth.Changed {
				continue
			}
			at, written := firstWrite[fmt.Sprint(d.Tenant)+"\x00"+d.Table+"\x00"+keyString(row.Key)]
			// A row missing with its pre-workload contents, or wrong with no write to explain
			// it, lost data older than the workload; otherwise the loss is no older than the
			// key's first write (the earliest, so the measure errs towards a larger RPO).
			if !written || (row.Kind == truth.Missing && r.base.has(d.TenantTable, row.Key)) {
				at = r.workloadStart
			}
			if at.Before(lossAt) {
				lossAt = at
			}
		}
	}
	return incidentAt.Sub(lossAt), true
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
