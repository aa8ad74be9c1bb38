package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/scenarios"
)

// inject breaks the cluster the way the scenario's incident says, and records exactly what it
// harmed.
func (r *run) inject(ctx context.Context) error {
	in := r.cfg.Scenario.Spec.Incident
	kind := in.Kind
	switch kind {
	case scenarios.ShardLoss:
		// A disk is lost: the shard's server and data are gone, its archive and backups are not.
		return r.record(incident.LoseShard(ctx, r.c, string(kind), in.Shard))
	case scenarios.UpdateWithoutWhere:
		// A fix meant for one row ran without the rest of its WHERE: every row of the tenants'
		// table takes the one value.
		return r.record(incident.OverwriteColumn(ctx, r.c, string(kind), incidentTenants(r.victims), r.harmed.table, r.harmed.column))
	case scenarios.BadMigration:
		// A migration runs on every shard and drops the column, or rewrites it with one value.
		if in.Migration == scenarios.DropColumn {
			return r.record(incident.DropColumn(ctx, r.c, string(kind), incidentTenants(r.victims), r.harmed.table, r.harmed.column))
		}
		return r.record(incident.OverwriteColumn(ctx, r.c, string(kind), incidentTenants(r.victims), r.harmed.table, r.harmed.column))
	case scenarios.WrongIDDeletion:
		// A cleanup job handed site ids where it expected app-installation ids (they have the
		// same shape) hard-deletes those sites' tenants, contact data and all.
		return r.record(incident.DeleteTenants(ctx, r.c, string(kind), incidentTenants(r.victims)))
	case scenarios.WrongIDSoftDelete:
		// The same job where deletes are soft: the wrong tenants' rows are only marked deleted.
		return r.record(incident.SoftDeleteTenants(ctx, r.c, string(kind), incidentTenants(r.victims)))
	case scenarios.PurgeNotSoftDelete:
		// A deactivation job handed the right tenants purges their rows where it should have
		// marked them deleted: they must come back marked.
		return r.record(incident.PurgeTenants(ctx, r.c, string(kind), incidentTenants(r.victims)))
	case scenarios.RingRollout:
		var rings []incident.Ring
		for _, in := range r.cfg.Scenario.Spec.Incident.Rings {
			ring := incident.Ring{Name: in.Name, Fraction: in.Fraction}
			if in.Guard != nil {
				ring.MaxRows = in.Guard.MaxRows
			}
			rings = append(rings, ring)
		}
		rec, results, err := incident.Rollout(ctx, r.c, string(kind), incidentTenants(r.victims), rings, incident.DeleteTenants)
		r.out.Rings = results
		if err != nil {
			return err
		}
		r.out.Incident = &rec
		r.out.BlastRadius = r.blastRadius(rec)
		r.victims = harmedOnly(r.victims, rec)
		return nil
	default:
		return fmt.Errorf("inject %s: unknown incident kind; want one of %v", kind, scenarios.IncidentKinds())
	}
}

// record keeps what an incident harmed, once the incident succeeded: a failed injection is the
// harness's error, and the drill ends there.
func (r *run) record(rec incident.Record, err error) error {
	if err != nil {
		return err
	}
	r.out.Incident = &rec
	return nil
}

// blastRadius compares what the rollout harmed with what the script targeted: the damage without
// rings.
func (r *run) blastRadius(rec incident.Record) *BlastRadius {
	b := &BlastRadius{TargetedTenants: len(r.victims), HarmedTenants: len(rec.Affected)}
	for _, v := range r.victims {
		b.TargetedRows += v.Rows // the plan's size: what deleting every target would have removed
	}
	for _, h := range rec.Harms {
		b.HarmedRows += h.Rows
	}
	return b
}

// harmedOnly keeps the targets the incident actually harmed.
func harmedOnly(targets []fixtures.Tenant, rec incident.Record) []fixtures.Tenant {
	return slices.DeleteFunc(slices.Clone(targets), func(t fixtures.Tenant) bool {
		return !slices.ContainsFunc(rec.Affected, func(a incident.Tenant) bool { return a.ID == t.ID })
	})
}

// columnTarget is the table and column an incident that harms one column harms.
type columnTarget struct{ table, column string }

// harmedColumn returns the column the scenario's incident harms, checked against the model: the
// one the scenario names, or, for a schema of one's own that names none, the one the model
// offers (fixtures.Model.HarmableColumn). Incidents that harm no column get the zero target. A
// table or column the schema does not have is invalid input, found before anything is filled.
func harmedColumn(in scenarios.Incident, m *fixtures.Model) (columnTarget, error) {
	if in.Kind != scenarios.UpdateWithoutWhere && in.Kind != scenarios.BadMigration {
		return columnTarget{}, nil
	}
	drop := in.Kind == scenarios.BadMigration && in.Migration == scenarios.DropColumn
	if in.Table == "" && in.Column == "" {
		table, column, ok := m.HarmableColumn(drop)
		if !ok {
			return columnTarget{}, fmt.Errorf("%w: spec.incident: schema %s has no data column outside its keys, checks and indexes for %s to harm; name one with spec.incident.table and spec.incident.column",
				dataset.ErrUnusableSchema, m.Name, in.Kind)
		}
		return columnTarget{table, column}, nil
	}
	t, ok := m.LookupTable(in.Table)
	if !ok || !t.Tenant() {
		return columnTarget{}, fmt.Errorf("%w: spec.incident.table: schema %s has no tenant table %q; its tenant tables: %s",
			dataset.ErrUnusableSchema, m.Name, in.Table, strings.Join(fixtures.TableNames(m.TenantTables()), ", "))
	}
	c, ok := t.Column(in.Column)
	if !ok {
		return columnTarget{}, fmt.Errorf("%w: spec.incident.column: table %s has no column %q; its columns: %s",
			dataset.ErrUnusableSchema, t.Name, in.Column, strings.Join(t.ColumnNames(), ", "))
	}
	if !m.Harmable(t, c, drop) {
		return columnTarget{}, fmt.Errorf("%w: spec.incident.column: %s.%s is a key, tenant, sequenced, generated or soft-delete column, or part of a foreign key, a unique key, a check or an index the harm would break: pick a data column",
			dataset.ErrUnusableSchema, t.Name, in.Column)
	}
	return columnTarget{in.Table, in.Column}, nil
}

// checkSchemaFits refuses, before anything is filled, a scenario whose incident or strategy the
// schema cannot carry: a soft delete (or a purge that should have been one) where no table has
// a soft-delete column, which would harm nothing and pass; logical exports restoring tenant
// databases anew where the schema has reference tables, which exports do not hold.
func checkSchemaFits(sc scenarios.Spec, m *fixtures.Model) error {
	switch sc.Incident.Kind {
	case scenarios.WrongIDSoftDelete, scenarios.PurgeNotSoftDelete:
		if !slices.ContainsFunc(m.TenantTables(), func(t fixtures.Table) bool { return t.SoftDelete != "" }) {
			return fmt.Errorf("%w: spec.incident.kind: %s needs a soft-delete column (a nullable timestamp named deleted_at, archived_at, ...), and no table of schema %s has one",
				dataset.ErrUnusableSchema, sc.Incident.Kind, m.Name)
		}
	}
	if sc.Restore.Strategy == scenarios.LogicalExport && sc.Cluster.Layout == fixtures.LayoutDatabase && len(m.ReferenceTables()) > 0 {
		return fmt.Errorf("%w: spec.restore.strategy: logical-export cannot recreate a tenant database of schema %s: its exports hold no reference tables (%s); choose pitr-sidecar",
			dataset.ErrUnusableSchema, m.Name, strings.Join(fixtures.TableNames(m.ReferenceTables()), ", "))
	}
	return nil
}
