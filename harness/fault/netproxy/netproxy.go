// Package netproxy puts a real TCP fault proxy in front of every server of a cluster, so that a
// drill can slow, throttle, reset, stall or cut the network between Postgres and every client
// (pgdrill's own steps, the workload, a runbook) while the servers themselves stay untouched.
//
// The faults are Toxiproxy's (github.com/Shopify/toxiproxy/v2), run in-process: no Toxiproxy
// server, no HTTP API. Toxiproxy's toxic chains carry the bytes; the listener, the connections
// and their teardown are this package's own, because Toxiproxy's Proxy.Stop leaves goroutines
// blocked for ever on connections that had bytes in flight, and a drill cuts connections under
// load. This is the one package that imports Toxiproxy.
package netproxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strconv"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	zlog "github.com/rs/zerolog/log"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// Toxiproxy logs through zerolog; its bandwidth toxic writes trace lines through zerolog's global
// logger, which goes to stderr. Connections ending is what faults are for, so none of it is news:
// Toxiproxy is silenced here, and this package logs what matters itself.
func init() { zlog.Logger = zerolog.Nop() }

// errClosed is returned by everything asked of a network, or of its proxies, after Close.
var errClosed = errors.New("network closed")

// Network puts one Toxiproxy proxy in front of each server of a cluster, so that every client
// pgdrill or a runbook uses reaches the servers through a fault a drill can inject.
// It is safe for concurrent use.
type Network struct {
	log *slog.Logger
	api *toxiproxy.ApiServer // what Toxiproxy's links and toxic collections need; never listens

	mu      sync.Mutex
	proxies map[string]*Proxy // by server name
	closed  bool
}

// New returns a network without proxies yet: each is made on first use of its server. Log
// receives what the proxies see go wrong (an unreachable server, a failed accept).
func New(log *slog.Logger) *Network {
	return &Network{
		log:     log,
		api:     toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop()),
		proxies: map[string]*Proxy{},
	}
}

// Proxy returns the proxy in front of s (a server of a cluster wrapped by Cluster or the server
// itself), making it on first use: it listens on a free loopback port for as long as the network
// is open. It also follows the server: a server that came back on another port (a sidecar
// started after it was prepared, a restart that lost its port) is reached at the new one. One
// proxy per server name: wrap one cluster per network.
func (n *Network) Proxy(s cluster.Server) (*Proxy, error) {
	if s == nil {
		return nil, errors.New("find proxy: no server")
	}
	s = unwrap(s)
	name, info := s.Name(), s.Info()
	upstream := net.JoinHostPort(info.Host, strconv.Itoa(info.Port))
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, fmt.Errorf("make proxy for %s: %w", name, errClosed)
	}
	if p, ok := n.proxies[name]; ok {
		p.follow(upstream)
		return p, nil
	}
	p, err := newProxy(n, name, upstream)
	if err != nil {
		return nil, fmt.Errorf("make proxy for %s: %w", name, err)
	}
	n.proxies[name] = p
	return p, nil
}

// Proxies lists the proxies made so far, sorted by server name, for listing and for healing
// everything at the end of a drill.
func (n *Network) Proxies() []*Proxy {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.SortedFunc(maps.Values(n.proxies), func(a, b *Proxy) int {
		return cmp.Compare(a.server, b.server)
	})
}

// Close stops every proxy: their listeners close, every connection through them is closed, and
// Close returns once the goroutines that carried those connections have ended, so that afterwards
// no port of theirs listens and nothing waits on them. A wrapped cluster keeps working after
// Close, straight to its servers. Safe to call more than once.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	proxies := slices.Collect(maps.Values(n.proxies))
	n.mu.Unlock()
	var errs []error
	for _, p := range proxies {
		errs = append(errs, p.close())
	}
	return errors.Join(errs...)
}

// follow points the proxy of a server at wherever the server is now, after something that may
// have moved it (Start, ReplaceData). After Close there is no proxy to point.
func (n *Network) follow(s cluster.Server) error {
	if _, err := n.Proxy(s); err != nil && !errors.Is(err, errClosed) {
		return err
	}
	return nil
}

// via returns the address of the proxy clients reach s through, or false when they reach s
// directly: once the network is closed, or when no proxy can be made (the error is logged; the
// fault a drill then injects through Proxy fails with it too).
func (n *Network) via(s cluster.Server) (string, bool) {
	p, err := n.Proxy(s)
	if err != nil {
		if !errors.Is(err, errClosed) {
			n.log.Error("server reached without its proxy", "server", s.Name(), "err", err)
		}
		return "", false
	}
	return p.listen, true
}

// rewrite points a connection URL of s at its proxy.
func (n *Network) rewrite(s cluster.Server, dsn string) string {
	if addr, ok := n.via(s); ok {
		return n.at(s, addr, dsn)
	}
	return dsn
}

// at points a connection URL of s at addr.
func (n *Network) at(s cluster.Server, addr, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		n.log.Error("server reached without its proxy: its DSN is not a URL", "server", s.Name())
		return dsn
	}
	u.Host = addr
	return u.String()
}

// Cluster wraps c so that its servers are reached through this network: Catalog, Shards,
// PrepareSidecar and StartStandby return servers whose DSN, DSNFor, CreateDatabase's URL and Info
// (Host, Port, DSN) point at that server's proxy; every other method passes through to the real
// server. Servers handed back in (ReplaceData's, StartStandby's of) are unwrapped before they
// reach c. RunID, Provider, Detach and Destroy pass through: Destroy does not close the network,
// Close does.
func (n *Network) Cluster(c cluster.Cluster) cluster.Cluster { return wrappedCluster{c, n} }

type wrappedCluster struct {
	cluster.Cluster
	n *Network
}

func (c wrappedCluster) Catalog() cluster.Server { return c.n.wrap(c.Cluster.Catalog()) }

func (c wrappedCluster) Shards() []cluster.Server {
	var shards []cluster.Server
	for _, s := range c.Cluster.Shards() {
		shards = append(shards, c.n.wrap(s))
	}
	return shards
}

func (c wrappedCluster) PrepareSidecar(ctx context.Context, spec cluster.SidecarSpec) (cluster.Server, error) {
	s, err := c.Cluster.PrepareSidecar(ctx, spec)
	if s != nil {
		s = c.n.wrap(s)
	}
	return s, err
}

func (c wrappedCluster) StartStandby(ctx context.Context, of cluster.Server, spec cluster.StandbySpec) (cluster.Standby, error) {
	s, err := c.Cluster.StartStandby(ctx, unwrap(of), spec)
	if s != nil {
		s = c.n.wrap(s).(cluster.Standby)
	}
	return s, err
}

// ReplaceData restarts s, possibly on another port: its proxy follows.
func (c wrappedCluster) ReplaceData(ctx context.Context, s, sidecar cluster.Server) error {
	s = unwrap(s)
	if err := c.Cluster.ReplaceData(ctx, s, unwrap(sidecar)); err != nil {
		return err
	}
	return c.n.follow(s)
}

// wrap returns s reached through the network; a server that is a Standby stays one. Wrappers
// are values, so that wrapping the same server twice gives equal servers, as the real ones are.
func (n *Network) wrap(s cluster.Server) cluster.Server {
	w := server{s, n}
	if sb, ok := s.(cluster.Standby); ok {
		return standby{w, sb}
	}
	return w
}

// unwrap returns the real server behind a wrapped one, and any other server as it is.
func unwrap(s cluster.Server) cluster.Server {
	for {
		w, ok := s.(interface{ real() cluster.Server })
		if !ok {
			return s
		}
		s = w.real()
	}
}

// server is a server of a wrapped cluster.
type server struct {
	cluster.Server
	n *Network
}

func (s server) real() cluster.Server { return s.Server }

func (s server) DSN() string { return s.n.rewrite(s.Server, s.Server.DSN()) }

func (s server) DSNFor(database string) string {
	return s.n.rewrite(s.Server, s.Server.DSNFor(database))
}

func (s server) CreateDatabase(ctx context.Context, name string) (string, error) {
	dsn, err := s.Server.CreateDatabase(ctx, name)
	if err != nil {
		return dsn, err
	}
	return s.n.rewrite(s.Server, dsn), nil
}

func (s server) Info() cluster.ServerInfo {
	info := s.Server.Info()
	addr, ok := s.n.via(s.Server)
	if !ok {
		return info
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return info // not reached: addr is a listener's
	}
	info.Host = host
	info.Port, _ = strconv.Atoi(port)
	info.DSN = s.n.at(s.Server, addr, info.DSN)
	return info
}

// Start starts the server, which may come up on another port (a prepared sidecar has none
// before): its proxy follows.
func (s server) Start(ctx context.Context) error {
	if err := s.Server.Start(ctx); err != nil {
		return err
	}
	return s.n.follow(s.Server)
}

// standby is a standby of a wrapped cluster: still a cluster.Standby.
type standby struct {
	server
	sb cluster.Standby
}

func (s standby) PauseReplay(ctx context.Context) error { return s.sb.PauseReplay(ctx) }

func (s standby) ReplayTo(ctx context.Context, target cluster.RecoveryTarget) error {
	return s.sb.ReplayTo(ctx, target)
}

func (s standby) Promote(ctx context.Context) error { return s.sb.Promote(ctx) }
