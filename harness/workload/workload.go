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

// Start starts one writer per shard, each writing to the tenants the plan put on its shard.
// Writes that fail are not acknowledged and not recorded; writes whose outcome is unknown (the
// connection broke after the statement was sent) are recorded as indeterminate.
func Start(ctx context.Context, c cluster.Cluster, plan *fixtures.Plan, cfg Config) (*Runner, error) {
	cfg = cfg.withDefaults()
	shards := c.Shards()
	if plan.Spec.Shards != len(shards) {
		return nil, fmt.Errorf("start workload: plan has %d shards, cluster %d", plan.Spec.Shards, len(shards))
	}
	r := &Runner{stop: make(chan struct{}), ledger: &Ledger{}}
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
			writers = append(writers, &writer{shard: s, index: i, layout: plan.Spec.Layout, tenants: tenants, cfg: cfg,
				rng:    rand.New(rand.NewPCG(cfg.Seed, uint64(i*perShard+k)+1)),
				nextID: map[int64]int64{}, conns: map[string]*pgx.Conn{}, ledger: r.ledger})
		}
	}
	interval := time.Duration(float64(time.Second) * float64(len(writers)) / float64(cfg.Rate))
	for _, w := range writers {
		r.wg.Go(func() { w.run(ctx, r.stop, interval) })
	}
	return r, nil
}

// Stop stops the writers once their statements in flight have finished (so that every write
// that reached the database is in the ledger), waits for them and returns the ledger. It is safe
// to call more than once.
func (r *Runner) Stop() *Ledger {
	r.stopOnce.Do(func() { close(r.stop) })
	r.wg.Wait()
	return r.ledger
}

// writer writes to the tenants of one shard over one connection per database.
type writer struct {
	shard   cluster.Server
	index   int
	layout  fixtures.Layout
	tenants []fixtures.Tenant
	cfg     Config
	rng     *rand.Rand
	nextID  map[int64]int64
	conns   map[string]*pgx.Conn
	ledger  *Ledger
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

// conn returns the connection to the database holding tenant t, opening it when needed.
func (w *writer) conn(ctx context.Context, t fixtures.Tenant) (*pgx.Conn, error) {
	db := w.layout.Locate(t.ID).Database
	if c, ok := w.conns[db]; ok && !c.IsClosed() {
		return c, nil
	}
	cfg, err := pgx.ParseConfig(w.shard.DSNFor(db))
	if err != nil {
		return nil, fmt.Errorf("parse DSN: %w", err)
	}
	truth.ConfigureSession(cfg)
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	w.conns[db] = c
	return c, nil
}

// write performs one random operation on one random tenant of the shard.
func (w *writer) write(ctx context.Context) {
	t := w.tenants[w.rng.IntN(len(w.tenants))]
	conn, err := w.conn(ctx, t)
	if err != nil {
		return // a tenant whose database is gone cannot be written: not acknowledged
	}
	op := w.pick()
	stmt, table, key, args := w.statement(op, t)
	start := time.Now()
	var newHash, oldHash *int64
	err = conn.QueryRow(ctx, stmt, args...).Scan(&newHash, &oldHash)
	e := Entry{Tenant: t.ID, Shard: w.index, Table: table, Key: key, Op: op, Sent: start, Acked: time.Now()}
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return // the row was not there: nothing written
	case err != nil && isDefinite(err):
		return // refused, or never sent: not acknowledged
	case err != nil:
		e.Indeterminate = true // sent, outcome unknown
		_ = conn.Close(context.WithoutCancel(ctx))
	default:
		e.Delta = delta(op, newHash, oldHash)
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

// statement returns one autocommitted statement for op on tenant t that returns the new row's
// hash and the old row's hash (either NULL where there is none), with the table and primary key
// it touches. Inserts add comments; updates move an issue's status; deletes remove a comment.
func (w *writer) statement(op Op, t fixtures.Tenant) (sql, table string, pk []string, args []any) {
	schema := w.layout.Locate(t.ID).Schema
	comments := pgx.Identifier{schema, fixtures.TableComments}.Sanitize()
	issues := pgx.Identifier{schema, fixtures.TableIssues}.Sanitize()
	hash := truth.RowHashSQL
	switch op {
	case OpInsert:
		id := WorkloadIDBase + w.nextID[t.ID]
		w.nextID[t.ID]++
		issue := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableIssues), 1))
		author := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableUsers), 1))
		body := fmt.Sprintf("workload comment %d on issue %d", id, issue)
		return "INSERT INTO " + comments + " AS t (tenant_id, comment_id, issue_id, author_id, body, created_at, updated_at) " +
				"VALUES ($1, $2, $3, $4, $5, now(), now()) RETURNING " + hash("t") + ", NULL::bigint",
			fixtures.TableComments, key(t.ID, id), []any{t.ID, id, issue, author, body}
	case OpUpdate:
		issue := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableIssues), 1))
		status := []string{"To Do", "In Progress", "In Review", "Done"}[w.rng.IntN(4)]
		// The old row is read in the same statement, joined so that it is read before the update.
		return "WITH old AS (SELECT tenant_id, issue_id, " + hash("o") + " AS h FROM " + issues + " o WHERE tenant_id = $1 AND issue_id = $2) " +
				"UPDATE " + issues + " AS t SET status = $3, updated_at = clock_timestamp() FROM old " +
				"WHERE t.tenant_id = old.tenant_id AND t.issue_id = old.issue_id RETURNING " + hash("t") + ", old.h",
			fixtures.TableIssues, key(t.ID, issue), []any{t.ID, issue, status}
	default:
		comment := 1 + w.rng.Int64N(max(t.TableRows(fixtures.TableComments), 1))
		return "DELETE FROM " + comments + " AS t WHERE tenant_id = $1 AND comment_id = $2 RETURNING NULL::bigint, " + hash("t"),
			fixtures.TableComments, key(t.ID, comment), []any{t.ID, comment}
	}
}

// key is a (tenant_id, id) primary key as text values.
func key(tenant, id int64) []string {
	return []string{strconv.FormatInt(tenant, 10), strconv.FormatInt(id, 10)}
}
