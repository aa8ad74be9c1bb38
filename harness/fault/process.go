package fault

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// upWait bounds how long a process fault waits for its target to run: a fault attached to the
// start of a phase ("kill the sidecar during replay") strikes as soon as the phase has started
// the server, not before.
const upWait = 30 * time.Second

// probeTimeout bounds the queries the confirmations make.
const probeTimeout = 2 * time.Second

// whenRunning calls f until the server runs (f does not fail with cluster.ErrNotRunning), upWait
// passes or ctx ends.
func whenRunning(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, upWait)
	defer cancel()
	for {
		err := f(ctx)
		if !errors.Is(err, cluster.ErrNotRunning) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (waited %s for it to start)", err, upWait)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// runOf names the run of s going on now, or fails with cluster.ErrNotRunning while s has none.
// A fault strikes only a run it has named: a server that starts between the look and the signal
// would otherwise be struck under no name, and the fault's effect could never be confirmed.
func runOf(s cluster.Server) (string, error) {
	if instance := s.Info().Instance; instance != "" {
		return instance, nil
	}
	return "", fmt.Errorf("name the run of %s: %w", s.Name(), cluster.ErrNotRunning)
}

// answers runs SELECT 1 on a new connection to s within probeTimeout.
func answers(ctx context.Context, s cluster.Server) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	return cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, "SELECT 1")
		return err
	})
}

// Kill is kill -9 of a server, as a crash or an OOM kill does. Healing starts it again, with
// crash recovery, unless it is a sidecar: the restore that owns it must notice and restart it
// itself, which is what the drill rehearses.
type Kill struct {
	Server   cluster.Server
	instance string
}

// Describe implements Fault.
func (k *Kill) Describe() string { return "kill -9 " + k.Server.Name() }

// Setup implements Fault.
func (k *Kill) Setup(context.Context) error { return nil }

// Inject implements Fault: it waits for the server to run, then kills it.
func (k *Kill) Inject(ctx context.Context) error {
	return whenRunning(ctx, func(ctx context.Context) error {
		var err error
		if k.instance, err = runOf(k.Server); err != nil {
			return err
		}
		return k.Server.Kill(ctx)
	})
}

// Confirm implements Fault: the run of the server it killed is over.
func (k *Kill) Confirm(context.Context) error {
	switch {
	case k.instance == "":
		return errors.New("the provider does not say which run of the server it killed, so its end cannot be observed")
	case k.Server.Info().Instance == k.instance:
		return fmt.Errorf("%s still runs as %s", k.Server.Name(), k.instance)
	}
	return nil
}

// Heal implements Fault.
func (k *Kill) Heal(ctx context.Context) error {
	if k.restoresOwn() {
		return nil
	}
	if err := k.Server.Start(ctx); err != nil && !alreadyRunning(k.Server) {
		return err
	}
	return nil
}

// ConfirmHealed implements Fault: the server answers again (a sidecar: nothing to observe).
func (k *Kill) ConfirmHealed(ctx context.Context) error {
	if k.restoresOwn() {
		return nil
	}
	return answers(ctx, k.Server)
}

// Cleanup implements Fault.
func (k *Kill) Cleanup(context.Context) error { return nil }

// restoresOwn reports whether the restore owns the server (a sidecar) and so restarts it.
func (k *Kill) restoresOwn() bool { return k.Server.Role() == cluster.RoleSidecar }

// alreadyRunning reports whether s runs (so a Start that failed found it started by someone
// else, the restore).
func alreadyRunning(s cluster.Server) bool { return s.Info().Instance != "" }

// Pause freezes a server with SIGSTOP, as a stalled host or a long GC pause does: connections
// hang, nothing fails fast. Healing thaws it (SIGCONT).
type Pause struct {
	Server cluster.Server
}

// Describe implements Fault.
func (p *Pause) Describe() string { return "SIGSTOP " + p.Server.Name() }

// Setup implements Fault.
func (p *Pause) Setup(context.Context) error { return nil }

// Inject implements Fault: it waits for the server to run, then freezes it.
func (p *Pause) Inject(ctx context.Context) error { return whenRunning(ctx, p.Server.Pause) }

// Confirm implements Fault: a query does not answer in time.
func (p *Pause) Confirm(ctx context.Context) error {
	if err := answers(ctx, p.Server); err == nil {
		return fmt.Errorf("%s still answers queries", p.Server.Name())
	}
	return nil
}

// Heal implements Fault.
func (p *Pause) Heal(ctx context.Context) error { return p.Server.Resume(ctx) }

// ConfirmHealed implements Fault: the server answers again.
func (p *Pause) ConfirmHealed(ctx context.Context) error { return answers(ctx, p.Server) }

// Cleanup implements Fault.
func (p *Pause) Cleanup(context.Context) error { return nil }

// Restart restarts a server: cleanly (a fast shutdown, as a planned restart) or immediately (kill
// -9 and start, as a crash and a supervisor's restart). Every client connection is lost either
// way; the server comes back at the same address.
type Restart struct {
	Server    cluster.Server
	Immediate bool
	instance  string
}

// Describe implements Fault.
func (r *Restart) Describe() string {
	if r.Immediate {
		return "immediate restart of " + r.Server.Name()
	}
	return "clean restart of " + r.Server.Name()
}

// Setup implements Fault: a sidecar's start is its restore's, so it cannot be restarted under it.
func (r *Restart) Setup(context.Context) error {
	if r.Server.Role() == cluster.RoleSidecar {
		return fmt.Errorf("%s is a sidecar, which its restore starts: kill it instead", r.Server.Name())
	}
	return nil
}

// Inject implements Fault.
func (r *Restart) Inject(ctx context.Context) error {
	return whenRunning(ctx, func(ctx context.Context) error {
		var err error
		if r.instance, err = runOf(r.Server); err != nil {
			return err
		}
		stop := r.Server.Stop
		if r.Immediate {
			stop = r.Server.Kill
		}
		if err := stop(ctx); err != nil {
			return err
		}
		return r.Server.Start(ctx)
	})
}

// Confirm implements Fault: another run of the server's process goes on now, and it answers.
func (r *Restart) Confirm(ctx context.Context) error {
	if now := r.Server.Info().Instance; r.instance == "" || now == "" || now == r.instance {
		return fmt.Errorf("%s runs as %q, not anew (it ran as %q)", r.Server.Name(), now, r.instance)
	}
	return answers(ctx, r.Server)
}

// Heal implements Fault: a restart heals itself.
func (r *Restart) Heal(context.Context) error { return nil }

// ConfirmHealed implements Fault.
func (r *Restart) ConfirmHealed(ctx context.Context) error { return answers(ctx, r.Server) }

// Cleanup implements Fault.
func (r *Restart) Cleanup(context.Context) error { return nil }
