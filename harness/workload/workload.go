// Package workload keeps every tenant of a cluster busy while a drill breaks and restores it —
// inserting, updating and deleting rows at a set rate — and records each acknowledged write in a
// ledger. The ledger is what lets a drill say what every tenant *must* hold afterwards: each
// write carries the exact change it made to its table's fingerprint (computed by Postgres in the
// same statement), so expected = fingerprint before the workload + the ledger's changes.
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/truth"
)

// Config shapes the workload. The zero value gets the documented defaults.
type Config struct {
	// Rate is the number of writes per second over the whole cluster. Default: 100.
	Rate int
	// Writers is the number of concurrent writers, spread over the shards (at least one per
	// shard). Default: one per shard.
	Writers int
	// Seed drives the choice of tenants, rows and operations. Default: 1.
	Seed uint64
	// Mix weighs inserts, updates and deletes. Default: 6:3:1.
	Mix Mix
}

// Mix weighs the operations a writer picks.
type Mix struct{ Insert, Update, Delete int }

func (c Config) withDefaults() Config {
	if c.Rate <= 0 {
		c.Rate = 100
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Mix == (Mix{}) {
		c.Mix = Mix{Insert: 6, Update: 3, Delete: 1}
	}
	return c
}

// Op is what a write did.
type Op string

// The operations a writer performs.
const (
	OpInsert Op = "insert"
	OpUpdate Op = "update"
	OpDelete Op = "delete"
)

// WorkloadIDBase is where the ids of rows the workload inserts start, far above anything the
// fixtures generate, so a reader of a report can tell them apart.
const WorkloadIDBase = 1 << 40

// Runner is a running workload.
type Runner struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	ledger *Ledger
	// stopOnce guards closing stop.
	stopOnce sync.Once
}

// Start starts the writers: one or more per shard, each writing to the tenants the plan put on
// its shard, and one writing to the catalog's tenant directory. Writes that fail are not
// acknowledged and not recorded; writes whose outcome is unknown (the connection broke after the
// statement was sent) are recorded as indeterminate, with the values they sent.
func Start(ctx context.Context, c cluster.Cluster, plan *fixtures.Plan, cfg Config) (*Runner, error) {
	cfg = cfg.withDefaults()
	shards := c.Shards()
	if plan.Spec.Shards != len(shards) {
		return nil, fmt.Errorf("start workload: plan has %d shards, cluster %d", plan.Spec.Shards, len(shards))
	}
	r := &Runner{stop: make(chan struct{}), ledger: &Ledger{}}
	var synth *synthTargets
	if !plan.Model.IsBuiltin() {
		synth = newSynthTargets(plan)
	}
	// Each tenant belongs to exactly one writer, so that its writes are acknowledged in the order
	// they were made and the ledger can replay them; a shard's tenants are dealt out among its
	// writers.
	perShard := max(1, (cfg.Writers+len(shards)-1)/len(shards))
	var writers []*writer
	for i, s := range shards {
		for k := range perShard {
			var tenants []fixtures.Tenant
			for j, t := range plan.OnShard(i) {
				if j%perShard == k {
					tenants = append(tenants, t)
				}
			}
			if len(tenants) == 0 {
				continue
			}
			writers = append(writers, &writer{server: s, index: i, layout: plan.Spec.Layout, tenants: tenants, cfg: cfg, synth: synth,
				rng:    rand.New(rand.NewPCG(cfg.Seed, uint64(i*perShard+k)+1)),
				nextID: map[int64]int64{}, conns: map[string]*pgx.Conn{}, ledger: r.ledger})
		}
	}
	interval := time.Duration(float64(time.Second) * float64(len(writers)) / float64(cfg.Rate))
	for _, w := range writers {
		r.wg.Go(func() { w.run(ctx, r.stop, interval) })
	}
	if len(plan.Tenants) > 0 {
		d := &writer{server: c.Catalog(), index: DirectoryShard, directory: true, tenants: plan.Tenants, cfg: cfg,
			rng: rand.New(rand.NewPCG(cfg.Seed, 0)), conns: map[string]*pgx.Conn{}, ledger: r.ledger}
		r.wg.Go(func() { d.run(ctx, r.stop, time.Second*DirectoryShare/time.Duration(cfg.Rate)) })
	}
	return r, nil
}

// DirectoryShard is the Shard of a write to the catalog's tenant directory.
const DirectoryShard = -1

// DirectoryShare is how many writes to tenants' tables the workload makes for every write to
// the tenant directory: tiers change and entries are touched far less often than tenants' data.
const DirectoryShare = 20

// Stop stops the writers once their statements in flight have finished (so that every write
// that reached the database is in the ledger), waits for them and returns the ledger. It is safe
// to call more than once.
func (r *Runner) Stop() *Ledger {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
	return r.ledger
}

// writer writes to some tenants of one server, over one connection per database: their tables
// on a shard, or their entries in the catalog's directory.
type writer struct {
	server    cluster.Server
	index     int
	directory bool
	layout    fixtures.Layout
	tenants   []fixtures.Tenant
	// synth writes to a schema of the scenario's own (nil: the built-in world's statements).
	synth  *synthTargets
	cfg    Config
	rng    *rand.Rand
	nextID map[int64]int64
	conns  map[string]*pgx.Conn
	ledger *Ledger
}

// run writes until stop is closed or ctx ends; ctx also bounds each statement, so cancelling it
// (a drill aborted) may leave the last write indeterminate, which the ledger records.
func (w *writer) run(ctx context.Context, stop <-chan struct{}, interval time.Duration) {
	defer func() {
		for _, c := range w.conns {
			_ = c.Close(context.WithoutCancel(ctx))
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-t.C:
		}
		w.write(ctx)
	}
}

// conn returns the connection to the database holding tenant t's rows, opening it when needed.
func (w *writer) conn(ctx context.Context, t fixtures.Tenant) (*pgx.Conn, error) {
	db := fixtures.SharedDatabase
	if !w.directory {
		db = w.layout.Locate(t.ID).Database
	}
	if c, ok := w.conns[db]; ok && !c.IsClosed() {
		return c, nil
	}
	c, err := truth.Connect(ctx, w.server.DSNFor(db), "")
	if err != nil {
		return nil, err
	}
	w.conns[db] = c
	return c, nil
}

// write performs one random operation on one random tenant of the writer.
func (w *writer) write(ctx context.Context) {
	t := w.tenants[w.rng.IntN(len(w.tenants))]
	conn, err := w.conn(ctx, t)
	if err != nil {
		return // a tenant whose database is gone cannot be written: not acknowledged
	}
	var s statement
	if w.directory {
		s = w.directoryUpdate(t)
	} else {
		var ok bool
		if s, ok = w.statementFor(w.pick(), t); !ok {
			return // the schema has nothing this operation can write
		}
	}
	if s.prepare != nil {
		if err := s.prepare(ctx, conn, &s); err != nil {
			return // nothing was written
		}
	}
	start := time.Now()
	var newHash, oldHash *int64
	err = conn.QueryRow(ctx, s.sql, s.args...).Scan(&newHash, &oldHash)
	e := Entry{Tenant: t.ID, Shard: w.index, Table: s.table, Key: s.key, Op: s.op, Values: s.values, Sent: start, Acked: time.Now()}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return // the row was not there: nothing written
	case err != nil && isDefinite(err):
		return // refused, or never sent: not acknowledged
	case err != nil:
		e.Indeterminate = true // sent, outcome unknown
		_ = conn.Close(context.WithoutCancel(ctx))
	default:
		e.Delta = delta(s.op, newHash, oldHash)
	}
	w.ledger.add(e)
}

// isDefinite reports whether a failed statement certainly did not commit: the server refused it,
// or it was never sent.
func isDefinite(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) || pgconn.SafeToRetry(err)
}

func (w *writer) pick() Op {
	m := w.cfg.Mix
	n := w.rng.IntN(m.Insert + m.Update + m.Delete)
	switch {
	case n < m.Insert:
		return OpInsert
	case n < m.Insert+m.Update:
		return OpUpdate
	default:
		return OpDelete
	}
}

// statement is one autocommitted write that returns the new row's hash and the old row's hash
// (either NULL where there is none), with what it touches and the values it sets.
type statement struct {
	sql    string
	args   []any
	op     Op
	table  string
	key    []string
	values map[string]*string
	// prepare, when set, completes the statement over the connection it will be sent on before
	// it is sent (an insert takes its identity from the table's own sequence).
	prepare func(ctx context.Context, conn *pgx.Conn, s *statement) error
}

// statement returns a write of op on tenant t: inserts add comments, updates move an issue's
// status, deletes remove a comment. Every value it writes, timestamps included, is chosen here,
// so that the ledger knows the row the write makes whether or not its outcome is known.
func (w *writer) statement(op Op, t fixtures.Tenant) statement {
	schema := w.layout.Locate(t.ID).Schema
	comments := pgx.Identifier{schema, fixtures.TableComments}.Sanitize()
	issues := pgx.Identifier{schema, fixtures.TableIssues}.Sanitize()
	at := Timestamp(time.Now())
	switch op {
	case OpInsert:
		id := WorkloadIDBase + w.nextID[t.ID]
		w.nextID[t.ID]++
		issue := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableIssues), 1))
		author := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableUsers), 1))
		body := fmt.Sprintf("workload comment %d on issue %d", id, issue)
		return statement{
			sql: "INSERT INTO " + comments + " AS t (tenant_id, comment_id, issue_id, author_id, body, created_at, updated_at) " +
				"VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING " + truth.RowHashSQL("t", comments) + ", NULL::pg_catalog.int8",
			args: []any{t.ID, id, issue, author, body, at}, op: op, table: fixtures.TableComments, key: key(t.ID, id),
			values: texts("tenant_id", t.ID, "comment_id", id, "issue_id", issue, "author_id", author, "body", body,
				"created_at", at, "updated_at", at, "deleted_at", nil),
		}
	case OpUpdate:
		issue := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableIssues), 1))
		status := []string{"To Do", "In Progress", "In Review", "Done"}[w.rng.IntN(4)]
		// The old row is read in the same statement, joined so that it is read before the update.
		return statement{
			sql: "WITH old AS (SELECT o.tenant_id, o.issue_id, " + truth.RowHashSQL("o", issues) + " AS h FROM " + issues +
				" o WHERE o.tenant_id = $1 AND o.issue_id = $2) " +
				"UPDATE " + issues + " AS t SET status = $3, updated_at = $4 FROM old " +
				"WHERE t.tenant_id = old.tenant_id AND t.issue_id = old.issue_id RETURNING " + truth.RowHashSQL("t", issues) + ", old.h",
			args: []any{t.ID, issue, status, at}, op: op, table: fixtures.TableIssues, key: key(t.ID, issue),
			values: texts("status", status, "updated_at", at),
		}
	default:
		comment := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableComments), 1))
		return statement{
			sql: "DELETE FROM " + comments + " AS t WHERE t.tenant_id = $1 AND t.comment_id = $2 RETURNING NULL::pg_catalog.int8, " +
				truth.RowHashSQL("t", comments),
			args: []any{t.ID, comment}, op: op, table: fixtures.TableComments, key: key(t.ID, comment),
		}
	}
}

// directoryUpdate returns a write to tenant t's entry in the tenant directory: a change of tier,
// as an upgrade or a downgrade makes.
func (w *writer) directoryUpdate(t fixtures.Tenant) statement {
	dir := pgx.Identifier{fixtures.SharedSchema, fixtures.CatalogTenants}.Sanitize()
	tier := fixtures.Tiers()[w.rng.IntN(len(fixtures.Tiers()))]
	at := Timestamp(time.Now())
	return statement{
		sql: "WITH old AS (SELECT o.tenant_id, " + truth.RowHashSQL("o", dir) + " AS h FROM " + dir + " o WHERE o.tenant_id = $1) " +
			"UPDATE " + dir + " AS t SET tier = $2, updated_at = $3 FROM old WHERE t.tenant_id = old.tenant_id RETURNING " +
			truth.RowHashSQL("t", dir) + ", old.h",
		args: []any{t.ID, string(tier), at}, op: OpUpdate, table: truth.DirectoryTable, key: []string{strconv.FormatInt(t.ID, 10)},
		values: texts("tier", string(tier), "updated_at", at),
	}
}

// Timestamp is t as the workload writes it: to the microsecond Postgres keeps, in UTC, so that the
// value recorded is the value stored.
func Timestamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// texts turns column, value pairs into the text values an Entry records: integers in decimal,
// times as RFC 3339 with microseconds, nil as NULL.
func texts(pairs ...any) map[string]*string {
	out := make(map[string]*string, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		var v *string
		switch x := pairs[i+1].(type) {
		case nil:
		case int64:
			s := strconv.FormatInt(x, 10)
			v = &s
		case string:
			v = &x
		case time.Time:
			s := x.Format("2006-01-02T15:04:05.000000Z07:00")
			v = &s
		default:
			panic(fmt.Sprintf("workload: no text form for %T", x))
		}
		out[pairs[i].(string)] = v
	}
	return out
}

// key is a (tenant_id, id) primary key as text values.
func key(tenant, id int64) []string {
	return []string{strconv.FormatInt(tenant, 10), strconv.FormatInt(id, 10)}
}
