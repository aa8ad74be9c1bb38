package fault

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/fault/netproxy"
)

// NetworkKind names a network fault.
type NetworkKind string

// The network faults, as scenarios name them.
const (
	NetLatency   NetworkKind = "latency"
	NetBandwidth NetworkKind = "bandwidth"
	NetReset     NetworkKind = "reset"
	NetCut       NetworkKind = "cut"
	NetStall     NetworkKind = "stall"
)

// Network breaks the network between every client and one server, in the TCP fault proxy in
// front of it: latency with jitter, a bandwidth limit, connection resets, a full cut, or a
// half-open stall. Healing removes it. Only clients that reach the server through the proxy
// (every client of a drill whose scenario has a network fault) see it; the servers' own
// replication and archiving do not.
type Network struct {
	Proxy *netproxy.Proxy
	// Server is the server as clients reach it, through the proxy: what the confirmations query.
	Server  cluster.Server
	Kind    NetworkKind
	Latency time.Duration
	Jitter  time.Duration
	// Rate is the bandwidth limit, in KB/s.
	Rate int64
	// After is how long a reset lets a connection carry data before resetting it.
	After time.Duration
}

// Defaults of the parameters left zero.
const (
	defaultLatency = 100 * time.Millisecond
	defaultRate    = 100
)

// Describe implements Fault.
func (n *Network) Describe() string {
	switch n.Kind {
	case NetLatency:
		return fmt.Sprintf("latency %s±%s to %s", n.latency(), n.Jitter, n.Server.Name())
	case NetBandwidth:
		return fmt.Sprintf("bandwidth %d KB/s to %s", n.rate(), n.Server.Name())
	case NetReset:
		return "connection resets to " + n.Server.Name()
	case NetCut:
		return "network cut to " + n.Server.Name()
	}
	return "half-open stall to " + n.Server.Name()
}

func (n *Network) latency() time.Duration {
	if n.Latency == 0 {
		return defaultLatency
	}
	return n.Latency
}

func (n *Network) rate() int64 {
	if n.Rate == 0 {
		return defaultRate
	}
	return n.Rate
}

// Setup implements Fault.
func (n *Network) Setup(context.Context) error { return nil }

// Inject implements Fault.
func (n *Network) Inject(context.Context) error {
	switch n.Kind {
	case NetLatency:
		return n.Proxy.AddLatency(n.latency(), n.Jitter)
	case NetBandwidth:
		return n.Proxy.AddBandwidth(n.rate())
	case NetReset:
		return n.Proxy.AddReset(n.After)
	case NetCut:
		return n.Proxy.Cut()
	case NetStall:
		return n.Proxy.AddStall()
	}
	return fmt.Errorf("no network fault %q", n.Kind)
}

// Confirm implements Fault: it observes the fault from a client's side of the proxy.
func (n *Network) Confirm(ctx context.Context) error {
	switch n.Kind {
	case NetCut:
		conn, err := net.DialTimeout("tcp", n.Proxy.Listen(), probeTimeout)
		if err == nil {
			conn.Close()
			return fmt.Errorf("%s still accepts connections", n.Proxy.Listen())
		}
		return nil
	case NetReset, NetStall:
		if err := answers(ctx, n.Server); err == nil {
			return fmt.Errorf("%s still answers through the proxy", n.Server.Name())
		}
		return nil
	case NetLatency:
		took, err := timed(ctx, n.Server, "SELECT 'x'")
		if err == nil && took < n.latency()-n.Jitter {
			err = fmt.Errorf("a query's round trip took %s, less than the latency %s", took, n.latency())
		}
		return err
	}
	// Bandwidth: half a second's worth of bytes must take about that long.
	size := n.rate() * 1024 / 2
	took, err := timed(ctx, n.Server, fmt.Sprintf("SELECT repeat('x', %d)", size))
	if err == nil && took < 300*time.Millisecond {
		err = fmt.Errorf("%d bytes came in %s, faster than %d KB/s", size, took, n.rate())
	}
	return err
}

// timed runs query on a connection to s already open and returns how long its round trip took.
func timed(ctx context.Context, s cluster.Server, query string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*probeTimeout)
	defer cancel()
	var took time.Duration
	err := cluster.WithConn(ctx, s.DSN(), func(conn *pgx.Conn) error {
		start := time.Now()
		var out string
		err := conn.QueryRow(ctx, query).Scan(&out)
		took = time.Since(start)
		return err
	})
	return took, err
}

// Heal implements Fault.
func (n *Network) Heal(context.Context) error { return n.Proxy.Heal() }

// ConfirmHealed implements Fault: the proxy carries no fault, and the server answers through it.
//
// The proxy must carry no fault any more, and the server must answer through it; but a sidecar
// is the restore's, which stops it once its phase is done, often as a fault attached to that
// phase heals: for one, the clean proxy is what can be seen healed.
func (n *Network) ConfirmHealed(ctx context.Context) error {
	if left := n.Proxy.Faults(); len(left) > 0 {
		return fmt.Errorf("the proxy in front of %s still carries %s", n.Server.Name(), strings.Join(left, ", "))
	}
	if n.Server.Role() == cluster.RoleSidecar {
		return nil
	}
	return answers(ctx, n.Server)
}

// Cleanup implements Fault: the proxy itself is the drill's, closed at teardown.
func (n *Network) Cleanup(context.Context) error { return nil }
