package netproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/Shopify/toxiproxy/v2/stream"
	"github.com/Shopify/toxiproxy/v2/toxics"
	"golang.org/x/sys/unix"
)

// Toxiproxy's names of the two directions of a connection.
const (
	toServer = "upstream"   // client to server
	toClient = "downstream" // server to client
)

const (
	// dialTimeout bounds connecting to the server for a new client.
	dialTimeout = 5 * time.Second
	// drainTimeout bounds how long Heal and Close wait for dropped connections' bytes to drain
	// out of Toxiproxy's toxic chains (what was in flight, at most a few chunks each).
	drainTimeout = 10 * time.Second
	// acceptRetry is how long the listener waits after a failed accept (out of file
	// descriptors, say) before accepting again.
	acceptRetry = 10 * time.Millisecond
)

// Proxy is the fault proxy in front of one server: clients that dial Listen reach the server at
// Upstream through Toxiproxy's toxics, and a fault injected here acts on every connection, open
// or new, until Heal. Faults add up (a latency and a bandwidth limit at once); each kind can be
// added once until Heal. Its methods are safe for concurrent use.
type Proxy struct {
	n      *Network
	server string
	listen string                     // host:port, the same for the proxy's whole life
	toxics *toxiproxy.ToxicCollection // of a Toxiproxy proxy that never starts: links only

	op     sync.Mutex   // serializes faults, Heal and close, and admits new connections
	ln     net.Listener // nil while cut and once closed
	hold   int          // while cut, a socket bound to listen without listening; -1 otherwise
	closed bool

	resetting atomic.Bool    // a reset fault is active: connections end with RST
	links     atomic.Int64   // Toxiproxy links still carrying bytes, two per connection
	tasks     sync.WaitGroup // accept loops, and connections being set up

	mu       sync.Mutex // guards what follows, which connections change as they come and go
	upstream string
	conns    map[*conn]struct{}
	seq      int
}

func newProxy(n *Network, name, upstream string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	p := &Proxy{
		n:        n,
		server:   name,
		listen:   ln.Addr().String(),
		toxics:   toxiproxy.NewProxy(n.api, name, ln.Addr().String(), upstream).Toxics,
		hold:     -1,
		upstream: upstream,
		conns:    map[*conn]struct{}{},
	}
	p.serve(ln)
	return p, nil
}

// Server is the name of the server the proxy is in front of.
func (p *Proxy) Server() string { return p.server }

// Listen is the host:port clients dial to reach the server through the proxy; it stays the
// same across Cut and Heal, so that connection strings handed out stay valid.
func (p *Proxy) Listen() string { return p.listen }

// Upstream is the server's own host:port, where the proxy connects its clients to.
func (p *Proxy) Upstream() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.upstream
}

// follow points the proxy at where its server is now, for the clients that connect from now on.
func (p *Proxy) follow(upstream string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.upstream = upstream
}

// AddLatency delays every byte from the server to its clients by latency ± jitter
// (milliseconds; Toxiproxy's latency toxic on the downstream stream): a query's round trip takes
// latency longer, and the server sees requests as early as ever.
func (p *Proxy) AddLatency(latency, jitter time.Duration) error {
	if latency < 0 || jitter < 0 {
		return fmt.Errorf("add latency to %s: negative latency %s or jitter %s", p.server, latency, jitter)
	}
	return p.add("latency", map[string]int64{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()},
		toClient)
}

// AddBandwidth limits each direction of every connection to kbPerSecond kilobytes (1000 bytes)
// a second (Toxiproxy's bandwidth toxic on both streams): query results and COPY both crawl.
func (p *Proxy) AddBandwidth(kbPerSecond int64) error {
	if kbPerSecond < 1 {
		return fmt.Errorf("add bandwidth limit to %s: rate %d KB/s is below 1", p.server, kbPerSecond)
	}
	return p.add("bandwidth", map[string]int64{"rate": kbPerSecond}, toServer, toClient)
}

// AddReset resets connections (TCP RST, both ends) after they carry data: the first bytes in
// either direction after the fault, a query or its result or a new connection's startup, are
// dropped and the connection is reset after that long. Open connections fail on their next
// query or on the result of the one in flight; new ones fail as they start. Heal closes the
// connections still held.
func (p *Proxy) AddReset(after time.Duration) error {
	if after < 0 {
		return fmt.Errorf("add reset to %s: negative delay %s", p.server, after)
	}
	return p.add(resetType, map[string]int64{"timeout": after.Milliseconds()}, toServer, toClient)
}

// AddStall makes the network half-open: connections stay open and new ones are accepted, but
// nothing is delivered either way (Toxiproxy's timeout toxic with timeout 0, on both streams),
// so queries hang until their client gives up. Heal closes the stalled connections: the bytes
// they lost cannot be delivered any more.
func (p *Proxy) AddStall() error {
	return p.add("timeout", map[string]int64{"timeout": 0}, toServer, toClient)
}

// Cut takes the server off the network: every open connection is closed and new ones are
// refused (the port stays reserved, bound without listening) until Heal.
func (p *Proxy) Cut() error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return fmt.Errorf("cut %s: %w", p.server, errClosed)
	}
	if p.ln == nil {
		return nil
	}
	_ = p.ln.Close() // its error can only be that it is closed already
	p.ln = nil
	var err error
	p.hold, err = holdPort(p.listen)
	p.dropAll()
	if err != nil {
		return fmt.Errorf("cut %s: %w", p.server, err)
	}
	return nil
}

// Heal removes every fault: toxics go, and a cut proxy listens again on the same port.
// Connections only slowed (latency, bandwidth) carry on; those a stall or reset held are closed.
func (p *Proxy) Heal() error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return fmt.Errorf("heal %s: %w", p.server, errClosed)
	}
	if slices.ContainsFunc(p.active(), breaking) {
		p.dropAll()
		if err := p.drain(); err != nil {
			return fmt.Errorf("heal %s: %w", p.server, err)
		}
	}
	p.toxics.ResetToxics(context.Background())
	p.resetting.Store(false)
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.listen) // binds beside the held socket, which does not listen
		if err != nil {
			return fmt.Errorf("heal %s: listen on %s again: %w", p.server, p.listen, err)
		}
		p.serve(ln)
		if p.hold >= 0 {
			_ = unix.Close(p.hold)
			p.hold = -1
		}
	}
	return nil
}

// Faults lists what is active on the proxy, for a drill to confirm a fault took effect and to
// show it: "cut", and each toxic as type, stream and attributes, e.g.
// `latency downstream {"latency":200,"jitter":0}`. Empty when healed.
func (p *Proxy) Faults() []string {
	p.op.Lock()
	defer p.op.Unlock()
	var faults []string
	if p.ln == nil && !p.closed {
		faults = append(faults, "cut")
	}
	for _, t := range p.active() {
		attrs, _ := json.Marshal(t.Toxic) // toxics are structs of numbers
		faults = append(faults, fmt.Sprintf("%s %s %s", t.Type, t.Stream, attrs))
	}
	return faults
}

// add adds a toxic of one type to the given streams, all or none.
func (p *Proxy) add(typ string, attrs map[string]int64, streams ...string) error {
	p.op.Lock()
	defer p.op.Unlock()
	if p.closed {
		return fmt.Errorf("add %s to %s: %w", typ, p.server, errClosed)
	}
	for _, s := range streams {
		if p.toxics.GetToxic(typ+"_"+s) != nil {
			return fmt.Errorf("add %s to %s: %w", typ, p.server, toxiproxy.ErrToxicAlreadyExists)
		}
	}
	if typ == resetType {
		p.resetting.Store(true) // before the toxic can fire
	}
	for _, s := range streams {
		body, err := json.Marshal(map[string]any{"name": typ + "_" + s, "type": typ, "stream": s,
			"toxicity": 1, "attributes": attrs})
		if err != nil {
			return fmt.Errorf("add %s to %s: %w", typ, p.server, err)
		}
		if _, err := p.toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("add %s to %s: %w", typ, p.server, err)
		}
	}
	return nil
}

// active lists the toxics in place.
func (p *Proxy) active() []*toxics.ToxicWrapper {
	var ts []*toxics.ToxicWrapper
	for _, t := range p.toxics.GetToxicArray() {
		ts = append(ts, t.(*toxics.ToxicWrapper))
	}
	return ts
}

// breaking reports whether a toxic loses bytes, so that the connections it held cannot carry
// on once it goes, and Toxiproxy must not be asked to remove it while they drain.
func breaking(t *toxics.ToxicWrapper) bool { return t.Type == "timeout" || t.Type == resetType }

// serve accepts clients on ln until it closes. The caller holds op.
func (p *Proxy) serve(ln net.Listener) {
	p.ln = ln
	p.tasks.Add(1)
	go func() {
		defer p.tasks.Done()
		for {
			c, err := ln.Accept()
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				p.n.log.Warn("proxy failed to accept a client", "server", p.server, "err", err)
				time.Sleep(acceptRetry)
				continue
			}
			p.tasks.Add(1)
			go p.connect(ln, c.(*net.TCPConn))
		}
	}()
}

// connect joins a client accepted on ln to the server through the toxic chains: two Toxiproxy
// links, one each way. A client whose server cannot be reached is closed, as Toxiproxy does.
func (p *Proxy) connect(ln net.Listener, client *net.TCPConn) {
	defer p.tasks.Done()
	addr := p.Upstream()
	up, err := net.DialTimeout("tcp", addr, dialTimeout)
	if err != nil {
		p.n.log.Debug("proxy cannot reach its server", "server", p.server, "upstream", addr, "err", err)
		_ = client.Close()
		return
	}
	p.op.Lock()
	defer p.op.Unlock()
	if p.ln != ln { // cut or closed meanwhile
		_ = client.Close()
		_ = up.Close()
		return
	}
	p.mu.Lock()
	p.seq++
	name := strconv.Itoa(p.seq)
	c, u := &conn{tcp: client, p: p}, &conn{tcp: up.(*net.TCPConn), p: p}
	p.conns[c], p.conns[u] = struct{}{}, struct{}{}
	p.mu.Unlock()
	p.links.Add(2)
	p.toxics.StartLink(p.n.api, name+" "+toServer, c, u, stream.Upstream)
	p.toxics.StartLink(p.n.api, name+" "+toClient, u, c, stream.Downstream)
}

// dropAll closes every connection through the proxy.
func (p *Proxy) dropAll() {
	p.mu.Lock()
	conns := slices.Collect(maps.Keys(p.conns))
	p.mu.Unlock()
	for _, c := range conns {
		c.kill()
	}
}

// drain waits, once every connection was dropped, until no link carries bytes any more. The
// toxics that only delay bytes go first, so that draining takes no longer than moving what was
// in flight; those that lose bytes stay until no link is left, because removing one from a link
// still draining can block that link for ever. The caller holds op, so no link starts meanwhile.
func (p *Proxy) drain() error {
	for _, t := range p.active() {
		if !breaking(t) {
			_ = p.toxics.RemoveToxic(context.Background(), t.Name) // only fails on a name not there
		}
	}
	deadline := time.Now().Add(drainTimeout)
	for p.links.Load() > 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("drain connections: %d links still busy after %s", p.links.Load(), drainTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// close stops the proxy for good and waits for everything it started to end.
func (p *Proxy) close() error {
	p.op.Lock()
	if p.closed {
		p.op.Unlock()
		return nil
	}
	p.closed = true
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	var errs []error
	if p.hold >= 0 {
		if err := unix.Close(p.hold); err != nil {
			errs = append(errs, fmt.Errorf("release port %s: %w", p.listen, err))
		}
		p.hold = -1
	}
	p.dropAll()
	errs = append(errs, p.drain())
	p.op.Unlock()
	p.tasks.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close proxy for %s: %w", p.server, err)
	}
	return nil
}

// conn is one side of a proxied connection, as Toxiproxy's links read and write it. Its writes
// never fail: once the connection is down they drop the bytes, so that the link writing to it
// always drains its toxic chain to the end (Toxiproxy's own links stop at a failed write and
// leave the goroutines of the chain blocked for ever).
type conn struct {
	tcp  *net.TCPConn
	p    *Proxy
	down atomic.Bool
	shut sync.Once
	done sync.Once
}

func (c *conn) Read(b []byte) (int, error) { return c.tcp.Read(b) }

func (c *conn) Write(b []byte) (int, error) {
	if !c.down.Load() {
		if _, err := c.tcp.Write(b); err != nil {
			c.kill()
		}
	}
	return len(b), nil
}

// Close is called by Toxiproxy once the link writing to c has drained its chain.
func (c *conn) Close() error {
	c.kill()
	c.done.Do(func() { c.p.links.Add(-1) })
	return nil
}

// kill closes the socket (with RST while a reset fault is active), which ends the link reading
// from it.
func (c *conn) kill() {
	c.shut.Do(func() {
		c.down.Store(true)
		if c.p.resetting.Load() {
			_ = c.tcp.SetLinger(0)
		}
		_ = c.tcp.Close()
		c.p.mu.Lock()
		delete(c.p.conns, c)
		c.p.mu.Unlock()
	})
}
