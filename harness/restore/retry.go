package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Retry is one step a restore tried again after a failure that a retry can mend (a connection
// lost, a server that died and recovers where it stopped), said in plain words for the drill's
// timeline and its reports. Failures a retry cannot mend (a missing WAL segment, a constraint a
// restored row breaks) are never retried: they end the restore and say why.
type Retry struct {
	Phase string `json:"phase"`
	Shard int    `json:"shard"`
	// Tenant is the tenant whose transaction was retried; 0 for a step that is no tenant's.
	Tenant int64 `json:"tenant,omitempty"`
	// Attempt is the attempt that failed, from 1.
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	// Cause is what went wrong, as the failing call said it.
	Cause string `json:"cause"`
	// Wait is how long the restore waited before the next attempt.
	Wait time.Duration `json:"wait"`
}

// backoff bounds how a restore retries: attempts in all, the first wait, doubling up to most.
// Eight attempts over about 16 s outlast a network cut or a server restart of a few seconds, and
// give up on an outage a person must look at.
type backoff struct {
	attempts    int
	first, most time.Duration
}

// transient is the backoff of every step a restore retries.
var transient = backoff{attempts: 8, first: 250 * time.Millisecond, most: 4 * time.Second}

// retry runs f until it succeeds, fails with an error mendable says a retry cannot mend, the
// attempts run out, or ctx ends; every failed attempt it retries is logged and put on tl.
func (b backoff) retry(ctx context.Context, tl *timeline, log *slog.Logger, phase string, shard int, tenant int64,
	mendable func(error) bool, f func() error) error {
	wait := b.first
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil || !mendable(err) || ctx.Err() != nil {
			return err
		}
		if attempt == b.attempts {
			return fmt.Errorf("gave up after %d attempts: %w", attempt, err)
		}
		tl.retried(Retry{Phase: phase, Shard: shard, Tenant: tenant, Attempt: attempt, At: time.Now(), Cause: err.Error(), Wait: wait})
		log.Warn("restore step failed in a way a retry can mend; retrying", "phase", phase, "shard", shard, "tenant", tenant,
			"attempt", attempt, "wait", wait, "err", err)
		if err := sleepCtx(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, b.most)
	}
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// died reports whether a server's start failed because its process died (killed, crashed) or
// its disk was full: started again (once there is room), it recovers from where it stopped.
func died(err error) bool {
	return errors.Is(err, cluster.ErrDied) || errors.Is(err, cluster.ErrNoSpace)
}

// lostConnection reports whether err is the loss of a connection (reset, cut, refused, timed
// out at the network, the server shutting down or starting up) rather than an answer of the
// server's: what a retry on a new connection can mend. A statement the server refused (a
// constraint, a syntax error) is not.
func lostConnection(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin shutdown, crash shutdown, cannot connect now
			return true
		}
		return pgErr.Code[:2] == "08" // connection exception
	}
	var connectErr *pgconn.ConnectError
	return errors.As(err, &connectErr) || pgconn.Timeout(err) || errors.Is(err, errConnLost)
}

// errConnLost marks an error after which the connection it happened on was closed: whatever the
// error says, the server never answered it.
var errConnLost = errors.New("connection lost")

// onConn wraps an error of a statement on conn as errConnLost when conn is closed since: pgx
// closes a connection whose network failed.
func onConn(conn *pgx.Conn, err error) error {
	if err != nil && conn.IsClosed() && !errors.Is(err, errConnLost) {
		return fmt.Errorf("%w: %w", errConnLost, err)
	}
	return err
}

// settleTimeout bounds how long a restore waits for the server to end the transaction of a
// connection it lost.
const settleTimeout = 30 * time.Second

// committed says whether transaction xid on server dsn committed: what a restore that lost its
// connection during a tenant's transaction must know before it tries the tenant again, or it
// would merge the tenant twice. A transaction the server still runs (it has not noticed its
// client is gone) is waited for; an xid that was never assigned ("") never committed.
func committed(ctx context.Context, dsn, xid string) (bool, error) {
	if xid == "" {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	var status *string
	err := cluster.WithConn(ctx, dsn, func(conn *pgx.Conn) error {
		for {
			if err := conn.QueryRow(ctx, "SELECT pg_xact_status($1::xid8)", xid).Scan(&status); err != nil {
				return fmt.Errorf("ask the status of transaction %s: %w", xid, err)
			}
			if status == nil || *status != "in progress" {
				return nil
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("wait for transaction %s to end: %w", xid, err)
			}
		}
	})
	return err == nil && status != nil && *status == "committed", err
}
