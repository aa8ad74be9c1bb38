package dataset

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
)

// scratchDatabase is the database of the catalog server a schema file is loaded into, to be read
// back as a model; it lives only as long as the reading.
const scratchDatabase = "pgdrill_schema"

// ErrUnusableSchema marks the errors of a schema pgdrill cannot drill, or of a dataset it cannot
// plan: the input is wrong, not the harness.
var ErrUnusableSchema = errors.New("unusable schema")

// Schema is a schema a cluster is to be filled with: the built-in world when DDL is empty.
type Schema struct {
	// DDL is the schema file's text; empty for the built-in world.
	DDL string
	// Options say how to read its tenancy model (its name, its tenant columns).
	Options fixtures.ReadOptions
	// Overrides are the scenario's value rules for the synthetic generator, by "table.column".
	Overrides map[string]fixtures.ColumnOverride
}

// Plan reads the schema's model (a schema file is loaded into a scratch database of the
// cluster's catalog, read back and dropped) and plans spec of its shape for the cluster's shards.
// For a schema of one's own it then tries the synthetic generator on the schema as a drill
// creates it (fixtures.CheckSynth), in the same scratch database. A model pgdrill cannot drill,
// a spec it cannot meet, or a constraint the generated rows would break is an ErrUnusableSchema,
// found before anything is filled.
func Plan(ctx context.Context, c cluster.Cluster, s Schema, spec fixtures.PlanSpec) (*fixtures.Plan, error) {
	spec.Shards = len(c.Shards())
	if s.DDL == "" {
		return planOf(spec, fixtures.Builtin())
	}
	var plan *fixtures.Plan
	err := inScratch(ctx, c, func(conn *pgx.Conn) error {
		m, err := loadModel(ctx, conn, s)
		if err != nil {
			return err
		}
		if plan, err = planOf(spec, m); err != nil {
			return err
		}
		return preflight(ctx, conn, plan)
	})
	return plan, err
}

// planOf checks the model and plans spec of its shape.
func planOf(spec fixtures.PlanSpec, m *fixtures.Model) (*fixtures.Plan, error) {
	if err := m.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnusableSchema, err)
	}
	plan, err := fixtures.NewPlan(spec, m)
	if err != nil {
		return nil, fmt.Errorf("%w: plan dataset: %w", ErrUnusableSchema, err)
	}
	return plan, nil
}

// preflight replaces the schema file's objects in the scratch database conn is connected to with
// the model's, as a drill's cluster gets them, and tries the synthetic generator's rows on them.
func preflight(ctx context.Context, conn *pgx.Conn, plan *fixtures.Plan) error {
	m := plan.Model
	ddl := "DROP SCHEMA " + pgx.Identifier{fixtures.SharedSchema}.Sanitize() + " CASCADE; CREATE SCHEMA " +
		pgx.Identifier{fixtures.SharedSchema}.Sanitize() + ";\n" + m.CreateTypesSQL() + m.CreateTablesSQL(fixtures.SharedSchema, m.Tables) +
		m.ConstraintsSQL(fixtures.SharedSchema, fixtures.SharedSchema, m.Tables)
	if _, err := conn.Exec(ctx, ddl); err != nil {
		return fmt.Errorf("%w: create schema %s as a drill does: %w", ErrUnusableSchema, m.Name, err)
	}
	if err := fixtures.CheckSynth(ctx, conn, plan); err != nil {
		return fmt.Errorf("%w: %w", ErrUnusableSchema, err)
	}
	return nil
}

// ReadModel loads the schema file into a scratch database of the cluster's catalog, reads its
// model and drops the database again. Postgres refusing the file is an ErrUnusableSchema.
func ReadModel(ctx context.Context, c cluster.Cluster, s Schema) (*fixtures.Model, error) {
	var m *fixtures.Model
	err := inScratch(ctx, c, func(conn *pgx.Conn) error {
		var err error
		m, err = loadModel(ctx, conn, s)
		return err
	})
	return m, err
}

// inScratch runs do connected to a scratch database of the cluster's catalog, created for it and
// dropped after, even when ctx was cancelled; a drop that fails is part of the error.
func inScratch(ctx context.Context, c cluster.Cluster, do func(conn *pgx.Conn) error) (err error) {
	dsn, err := c.Catalog().CreateDatabase(ctx, scratchDatabase)
	if err != nil {
		return fmt.Errorf("create scratch database: %w", err)
	}
	defer func() {
		dctx := context.WithoutCancel(ctx)
		derr := cluster.WithConn(dctx, c.Catalog().DSN(), func(conn *pgx.Conn) error {
			_, err := conn.Exec(dctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{scratchDatabase}.Sanitize()+" WITH (FORCE)")
			return err
		})
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("drop scratch database: %w", derr))
		}
	}()
	return cluster.WithConn(ctx, dsn, do)
}

// loadModel loads the schema file in the database conn is connected to and reads its model.
func loadModel(ctx context.Context, conn *pgx.Conn, s Schema) (*fixtures.Model, error) {
	opts := s.Options
	opts.Skip = append(opts.Skip, cluster.MarkerTable)
	m, err := fixtures.LoadModel(ctx, conn, s.DDL, opts)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return nil, fmt.Errorf("%w: %w", ErrUnusableSchema, err) // Postgres refused the file
	}
	if err != nil {
		return nil, err
	}
	m.Overrides = s.Overrides
	return m, nil
}
