package drill

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// detect waits until the incident is noticed: after a fixed delay, or when a probe of the
// steady state first fails. Detection time counts from the first harm's commit, as the harness
// saw it.
func (r *run) detect(ctx context.Context) error {
	d := r.cfg.Scenario.Spec.Detection
	first := r.out.Incident.FirstNoted()
	if d.Probe == nil {
		if err := sleep(ctx, time.Until(first.Add(d.Delay.Std()))); err != nil {
			return err
		}
	} else if err := r.probe(ctx, d.Probe.Interval.Std(), d.Probe.Timeout.Std()); err != nil {
		return err
	}
	r.clock.Detected = time.Now()
	return nil
}

// probe checks the steady state every interval — every tenant in the catalog has its data on its
// shard: rows of the model's root table (sites) under the shared layout, its schema or database
// otherwise — and returns once it does not hold. It notices tenants whose data is gone, not
// damaged data (scenario validation refuses a probe for those incidents).
func (r *run) probe(ctx context.Context, interval, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		missing, err := r.tenantsWithoutRoots(ctx)
		if err != nil {
			return err
		}
		if missing > 0 {
			r.log.Info("probe fired", "tenants_without_rows", missing)
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("probe: the steady state still held after %s; the incident went unnoticed", timeout)
		}
		if err := sleep(ctx, interval); err != nil {
			return err
		}
	}
}

// tenantsWithoutRoots counts the catalog's tenants whose shard holds no row of theirs in the
// model's root table (the built-in world's sites): a tenant that lost it is down for its users.
func (r *run) tenantsWithoutRoots(ctx context.Context) (int, error) {
	var tenants []fixtures.CatalogTenant
	if err := cluster.WithConn(ctx, r.c.Catalog().DSN(), func(conn *pgx.Conn) error {
		var err error
		tenants, err = fixtures.ReadTenants(ctx, conn)
		return err
	}); err != nil {
		return 0, err
	}
	have := map[int64]bool{}
	for i, s := range r.c.Shards() {
		ids, err := tenantsWithRoots(ctx, s.DSN(), r.plan.Spec.Layout, r.plan.Model, r.plan.OnShard(i))
		var pgErr *pgconn.PgError
		if err != nil && !errors.As(err, &pgErr) {
			// The shard does not answer (lost, down): none of its tenants' rows can be reached,
			// which is what the probe is there to notice.
			r.log.Info("probe cannot reach shard", "shard", i, "err", err)
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("probe shard %d: %w", i, err)
		}
		for _, id := range ids {
			have[id] = true
		}
	}
	missing := 0
	for _, t := range tenants {
		if !have[t.ID] {
			missing++
		}
	}
	return missing, nil
}

// tenantsWithRoots lists the tenants on a shard that have at least one row in the model's root
// table.
func tenantsWithRoots(ctx context.Context, dsn string, layout fixtures.Layout, m *fixtures.Model, tenants []fixtures.Tenant) ([]int64, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if layout == fixtures.LayoutShared {
		root := m.RootTable()
		rows, err := conn.Query(ctx, "SELECT DISTINCT "+pgx.Identifier{root.Owner.Column}.Sanitize()+"::int8 FROM "+
			pgx.Identifier{fixtures.SharedSchema, root.Name}.Sanitize())
		if err != nil {
			return nil, fmt.Errorf("list tenants with rows in %s: %w", root.Name, err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return nil, fmt.Errorf("list tenants with rows in %s: %w", root.Name, err)
		}
		return ids, nil
	}
	var out []int64
	for _, t := range tenants {
		q := "SELECT to_regnamespace($1) IS NOT NULL"
		if layout == fixtures.LayoutDatabase {
			q = "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)"
		}
		var ok bool
		if err := conn.QueryRow(ctx, q, fixtures.TenantContainer(t.ID)).Scan(&ok); err != nil {
			return nil, fmt.Errorf("look up tenant %d: %w", t.ID, err)
		}
		if ok {
			out = append(out, t.ID)
		}
	}
	return out, nil
}
